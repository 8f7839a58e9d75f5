"""The cost of a model call: priced from the table, unknown models priced as unknown, and each
model looked up in the table once."""

from typing import Any

import pytest

from zerg.agents import pricing
from zerg.agents.pricing import cost_usd


def test_a_priced_model_costs_its_tokens() -> None:
    small = cost_usd("openai:gpt-4o-mini", 1_000, 100)
    large = cost_usd("openai:gpt-4o-mini", 1_000_000, 100)
    assert small is not None and large is not None
    assert 0 < small < large
    assert cost_usd("anthropic:claude-3-5-haiku-latest", 1_000, 100) is not None


@pytest.mark.parametrize("model", ["openai:llama3.1-on-my-box", "local:qwen", "other:model"])
def test_an_unknown_model_has_no_price(model: str) -> None:
    assert cost_usd(model, 1_000, 100) is None


def test_scripted_models_are_free() -> None:
    assert cost_usd("scripted:demo", 1_000, 100) == 0.0


def test_the_table_is_searched_once_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    searched: list[str] = []
    search = pricing.calc_price

    def counting(*args: Any, **kwargs: Any) -> Any:
        searched.append(kwargs["model_ref"])
        return search(*args, **kwargs)

    pricing._in_table.cache_clear()
    monkeypatch.setattr(pricing, "calc_price", counting)
    for _ in range(5):
        assert cost_usd("openai:not-a-model-anyone-sells", 10, 1) is None
    assert searched == ["not-a-model-anyone-sells"]
    for _ in range(3):
        assert cost_usd("openai:gpt-4o-mini", 10, 1)
    assert searched.count("gpt-4o-mini") == 4  # looked up once, then priced each call
