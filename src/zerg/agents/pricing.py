"""Cost of a model call from its token usage, from the maintained `genai-prices` table."""

from functools import lru_cache

from genai_prices import Usage, calc_price

# Providers whose model names the price table knows; anything else is priced as unknown.
_PRICED_PROVIDERS = {"openai": "openai", "anthropic": "anthropic"}


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """US dollars for one call, 0 for scripted models, None when the price is unknown."""
    provider, _, name = model.partition(":")
    if provider == "scripted":
        return 0.0
    provider_id = _PRICED_PROVIDERS.get(provider)
    if provider_id is None or not _in_table(provider_id, name):
        return None
    price = calc_price(
        Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        model_ref=name,
        provider_id=provider_id,
    )
    return float(price.total_price)


@lru_cache(maxsize=256)
def _in_table(provider_id: str, name: str) -> bool:
    """Whether the table prices the model. The table remembers the models it finds, but
    looks through all of a provider's for one it lacks (a local server's model, under
    `openai:`) at every call."""
    try:
        calc_price(Usage(), model_ref=name, provider_id=provider_id)
    except LookupError:
        return False
    return True
