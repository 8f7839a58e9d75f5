"""Chat models from an agent's `provider:name` string, and errors that name their fix."""

import asyncio
import sys
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from zerg import heap
from zerg.agents.tools.mcp import McpServerError
from zerg.agents.turns import answer_arrived, waiting
from zerg.settings import Settings

if TYPE_CHECKING:  # LangChain's model classes load with the agent loop, on first use
    from langchain_core.language_models import BaseChatModel

# Local OpenAI-compatible servers (Ollama, llama.cpp, vLLM, LM Studio) ignore the key, but the
# client insists on one.
_UNUSED_KEY = SecretStr("not-needed")


# How many chat models one event loop keeps built (an agent's model, endpoint and limits each
# make one).
MODEL_CACHE_SIZE = 128


class _LoopModels:
    """The pooled HTTP client of each provider, and the chat models built on them, of one event
    loop: an HTTP client's connections belong to the loop that opened them."""

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}
        self.models: OrderedDict[tuple[Any, ...], BaseChatModel] = OrderedDict()

    def client(self, provider: str) -> Any:
        """The provider SDK's client on aiohttp, which its SDK recommends for many calls at
        once: a client on httpx looks at every pooled connection for each request, so its
        cost per call grows with the calls in flight. SDK defaults: up to 1000 connections."""
        client = self.clients.get(provider)
        if client is None:
            hooks = {"response": [_answer_arrived]}
            if provider == "anthropic":
                import anthropic

                client = anthropic.DefaultAioHttpClient(event_hooks=hooks)
            else:
                import openai

                client = openai.DefaultAioHttpClient(event_hooks=hooks)
            self.clients[provider] = client
        return client


async def _answer_arrived(response: Any) -> None:
    """The run's turn on the loop comes back with the answer's headers: reading and parsing
    it is the run's work (`zerg.agents.turns`)."""
    streaming = response.headers.get("content-type", "").startswith("text/event-stream")
    await answer_arrived(streaming)


_LOOPS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopModels]" = (
    weakref.WeakKeyDictionary()
)


def _load_provider(provider: str) -> None:
    """Import a provider's packages and build a throwaway client: the SDKs load more modules
    when a client is first built."""
    if provider == "openai":
        from zerg.agents.openai_chat import WireChatOpenAI

        WireChatOpenAI(model="warm-up", api_key=_UNUSED_KEY, base_url="http://127.0.0.1:9/v1")
    else:
        import anthropic
        from langchain_anthropic import ChatAnthropic

        anthropic.AsyncClient(api_key="unused")
        ChatAnthropic(model_name="warm-up", api_key=_UNUSED_KEY)  # type: ignore[call-arg]


_PROVIDERS = ("openai", "anthropic")


async def chat_model(model: str, config: dict[str, Any], settings: Settings) -> "BaseChatModel":
    """The chat model for `model` on the running event loop: built once per model, endpoint,
    key and limits, and sharing one pooled HTTP client per provider, so a run opens no client
    and usually no connection of its own. A call cut off by a cancel or a timeout closes its
    connection, which tells the model server to stop."""
    provider = model.partition(":")[0]
    if provider not in _PROVIDERS:
        return build_chat_model(model, config, settings)
    refusal = base_url_refusal(model, config.get("base_url") or None, settings)
    if refusal is not None:
        raise ModelConfigError(refusal)
    if not heap.loaded(provider):
        async with waiting():  # the first call of the process loads the provider's SDK
            await heap.load_once(provider, lambda: _load_provider(provider))
    loop_models = _LOOPS.setdefault(asyncio.get_running_loop(), _LoopModels())
    key = (
        model,
        config.get("base_url") or None,
        config.get("request_timeout_s"),
        config.get("max_retries"),
        settings.openai_base_url,
        settings.openai_api_key,
        settings.anthropic_api_key,
    )
    built = loop_models.models.get(key)
    if built is None:
        client = loop_models.client(provider)
        built = build_chat_model(model, config, settings, http_client=client)
        loop_models.models[key] = built
        if len(loop_models.models) > MODEL_CACHE_SIZE:
            loop_models.models.popitem(last=False)
    else:
        loop_models.models.move_to_end(key)
    return built


async def close_model_clients() -> None:
    """Close the running event loop's pooled model clients (when the process stops)."""
    loop_models = _LOOPS.pop(asyncio.get_running_loop(), None)
    if loop_models is not None:
        for client in loop_models.clients.values():
            await client.aclose()


class ModelConfigError(Exception):
    """The agent's model cannot be used as configured; the message says how to fix it."""


# Where each provider's SDK sends its key when no base URL is given.
PROVIDER_ENDPOINTS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_base_url(url: str) -> str | None:
    """`url` in the one spelling two equal endpoints share (scheme and host lowercased, default
    port and trailing slash dropped), or None when it is not an http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    userinfo, at, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}{at}{host}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, parts.fragment))


def trusted_base_urls(provider: str, settings: Settings) -> frozenset[str]:
    """The endpoints that may receive `provider`'s API key, normalised: the provider's own,
    OPENAI_BASE_URL for `openai:`, and those the operator lists in ZERG_MODEL_BASE_URLS."""
    urls = [*settings.allowed_model_base_urls, PROVIDER_ENDPOINTS.get(provider)]
    if provider == "openai":
        urls.append(settings.openai_base_url)
    return frozenset(n for u in urls if u and (n := normalise_base_url(u)) is not None)


def base_url_refusal(model: str, base_url: object, settings: Settings) -> str | None:
    """Why the agent's config.base_url must not receive the server's API key (None: it may).

    An agent chooses its base_url, and the server's key goes with every model call: a URL
    the operator has not listed would let anyone who can define an agent collect the key.
    """
    if base_url is None:
        return None
    provider = model.partition(":")[0]
    normalised = normalise_base_url(base_url) if isinstance(base_url, str) else None
    if normalised is not None and normalised in trusted_base_urls(provider, settings):
        return None
    return (
        f"config.base_url {base_url!r} is not an allowed model endpoint: Zerg sends its API "
        "keys only to the provider's own endpoint, OPENAI_BASE_URL and the URLs listed in "
        f"ZERG_MODEL_BASE_URLS. To use this server, add {base_url!r} to ZERG_MODEL_BASE_URLS "
        "(comma-separated) and restart Zerg."
    )


def build_chat_model(
    model: str,
    config: dict[str, Any],
    settings: Settings,
    *,
    http_client: Any = None,
) -> "BaseChatModel":
    """The chat model for `model` (`provider:name`), configured from the agent and settings."""
    provider, _, name = model.partition(":")
    timeout = float(config.get("request_timeout_s", 120))
    max_retries = int(config.get("max_retries", 2))
    # Checked again here, before any key is sent: the agent may have been stored before the
    # operator changed ZERG_MODEL_BASE_URLS.
    refusal = base_url_refusal(model, config.get("base_url") or None, settings)
    if refusal is not None and provider in PROVIDER_ENDPOINTS:
        raise ModelConfigError(refusal)
    # Provider packages are imported only when an agent uses them: they are slow to import.
    if provider == "openai":
        from zerg.agents.openai_chat import WireChatOpenAI

        base_url = config.get("base_url") or settings.openai_base_url
        key = settings.openai_api_key or (_UNUSED_KEY if base_url else None)
        if key is None:
            raise ModelConfigError(
                f"{model} needs an API key: set OPENAI_API_KEY, or give the agent "
                "config.base_url for an OpenAI-compatible server that needs none"
            )
        return WireChatOpenAI(
            model=name,
            api_key=key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            stream_usage=True,
            http_async_client=http_client,
        )
    if provider == "anthropic":
        import anthropic
        from langchain_anthropic import ChatAnthropic

        if settings.anthropic_api_key is None:
            raise ModelConfigError(f"{model} needs an API key: set ANTHROPIC_API_KEY")
        chat = ChatAnthropic(  # type: ignore[call-arg]
            model_name=name,
            api_key=settings.anthropic_api_key,
            base_url=config.get("base_url"),
            default_request_timeout=timeout,
            max_retries=max_retries,
        )
        if http_client is not None:
            # ChatAnthropic's own async client is one per base URL for the whole process,
            # bound to the first event loop that used it; give it the run's, as for openai:.
            chat.__dict__["_async_client"] = anthropic.AsyncClient(
                **chat._client_params, http_client=http_client
            )
        return chat
    if provider == "scripted":
        from zerg.agents.scripted import SCRIPTED_MODELS, ScriptedChatModel

        if name not in SCRIPTED_MODELS:
            raise ModelConfigError(
                f"unknown scripted model '{name}'; use one of: "
                + ", ".join(f"scripted:{n}" for n in SCRIPTED_MODELS)
            )
        return ScriptedChatModel(script=name)
    if provider == "local":
        from zerg.agents.local import LocalModelError, local_chat_model

        try:
            return local_chat_model(name, config, settings)
        except LocalModelError as exc:
            raise ModelConfigError(str(exc)) from None
    raise ModelConfigError(f"unknown model provider '{provider}' in '{model}'")


def describe_model_error(exc: BaseException, model: str) -> str:
    """One line for a failed model call (or a failed MCP server, which names itself): what
    happened and what to do about it."""
    if isinstance(exc, (ModelConfigError, McpServerError)):
        return str(exc)
    key_var = "ANTHROPIC_API_KEY" if model.startswith("anthropic:") else "OPENAI_API_KEY"
    if isinstance(exc, _sdk_errors("AuthenticationError")):
        return f"{model}: the provider rejected the API key (401); check {key_var}"
    if isinstance(exc, _sdk_errors("NotFoundError")):
        return f"{model}: the server does not know this model (404); check the agent's model name"
    if isinstance(exc, _sdk_errors("RateLimitError")):
        return f"{model}: rate limited by the provider (429); try again later"
    if isinstance(exc, _sdk_errors("APITimeoutError")):
        return f"{model}: the model server did not answer in time"
    if isinstance(exc, _sdk_errors("APIConnectionError")):
        return f"{model}: cannot reach the model server; check OPENAI_BASE_URL or config.base_url"
    if isinstance(exc, _sdk_errors("APIStatusError")):
        status, message = getattr(exc, "status_code", "?"), str(getattr(exc, "message", exc))
        return f"{model}: the model server answered {status}: {_short(message)}"
    if isinstance(exc, (*_sdk_errors("APIResponseValidationError"), ValueError)) and (
        "json" in str(exc).lower() or "expecting value" in str(exc).lower()
    ):
        return f"{model}: the model server sent a response that is not valid JSON"
    if isinstance(exc, httpx.HTTPError):
        return f"{model}: HTTP error talking to the model server: {_short(str(exc))}"
    return f"{model}: {type(exc).__name__}: {_short(str(exc))}"


def _sdk_errors(name: str) -> tuple[type[BaseException], ...]:
    """The provider SDKs' exception class `name`, of the SDKs loaded: an error of an SDK can
    only come from a loaded one, and loading one only to test for its errors costs a second."""
    return tuple(
        getattr(module, name)
        for module in (sys.modules.get("openai"), sys.modules.get("anthropic"))
        if module is not None
    )


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
