"""Chat models from an agent's `provider:name` string, and errors that name their fix."""

import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import httpx
import openai
from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from zerg.agents.scripted import SCRIPTED_MODELS, ScriptedChatModel
from zerg.settings import Settings

# Local OpenAI-compatible servers (Ollama, llama.cpp, vLLM, LM Studio) ignore the key, but the
# client insists on one.
_UNUSED_KEY = SecretStr("not-needed")


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~20 ms, so every client shares one context."""
    return httpx.create_ssl_context()


@asynccontextmanager
async def model_http_client(model: str) -> AsyncIterator[httpx.AsyncClient | None]:
    """An HTTP client for one run's model calls (None where the provider manages its own).

    The SDKs' shared default clients are bound to the first event loop that uses them, and
    runs execute on more than one loop (the server's, and the engine's for recovered runs).
    """
    if not model.startswith("openai:"):
        yield None
        return
    async with httpx.AsyncClient(verify=_ssl_context()) as client:
        yield client


class ModelConfigError(Exception):
    """The agent's model cannot be used as configured; the message says how to fix it."""


def build_chat_model(
    model: str,
    config: dict[str, Any],
    settings: Settings,
    *,
    http_client: httpx.AsyncClient | None = None,
) -> BaseChatModel:
    """The chat model for `model` (`provider:name`), configured from the agent and settings."""
    provider, _, name = model.partition(":")
    timeout = float(config.get("request_timeout_s", 120))
    max_retries = int(config.get("max_retries", 2))
    # Provider packages are imported only when an agent uses them: they are slow to import.
    if provider == "openai":
        from langchain_openai import ChatOpenAI

        base_url = config.get("base_url") or settings.openai_base_url
        key = settings.openai_api_key or (_UNUSED_KEY if base_url else None)
        if key is None:
            raise ModelConfigError(
                f"{model} needs an API key: set OPENAI_API_KEY, or give the agent "
                "config.base_url for an OpenAI-compatible server that needs none"
            )
        return ChatOpenAI(
            model=name,
            api_key=key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            stream_usage=True,
            http_async_client=http_client,
        )
    if provider == "anthropic":
        from langchain_anthropic import ChatAnthropic

        if settings.anthropic_api_key is None:
            raise ModelConfigError(f"{model} needs an API key: set ANTHROPIC_API_KEY")
        return ChatAnthropic(  # type: ignore[call-arg]
            model_name=name,
            api_key=settings.anthropic_api_key,
            base_url=config.get("base_url"),
            default_request_timeout=timeout,
            max_retries=max_retries,
        )
    if provider == "scripted":
        if name not in SCRIPTED_MODELS:
            raise ModelConfigError(
                f"unknown scripted model '{name}'; use one of: "
                + ", ".join(f"scripted:{n}" for n in SCRIPTED_MODELS)
            )
        return ScriptedChatModel(script=name)
    raise ModelConfigError(f"unknown model provider '{provider}' in '{model}'")


def describe_model_error(exc: BaseException, model: str) -> str:
    """One line for a failed model call: what happened and what to do about it."""
    if isinstance(exc, ModelConfigError):
        return str(exc)
    key_var = "ANTHROPIC_API_KEY" if model.startswith("anthropic:") else "OPENAI_API_KEY"
    if isinstance(exc, openai.AuthenticationError | anthropic.AuthenticationError):
        return f"{model}: the provider rejected the API key (401); check {key_var}"
    if isinstance(exc, openai.NotFoundError | anthropic.NotFoundError):
        return f"{model}: the server does not know this model (404); check the agent's model name"
    if isinstance(exc, openai.RateLimitError | anthropic.RateLimitError):
        return f"{model}: rate limited by the provider (429); try again later"
    if isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError):
        return f"{model}: the model server did not answer in time"
    if isinstance(exc, openai.APIConnectionError | anthropic.APIConnectionError):
        return f"{model}: cannot reach the model server; check OPENAI_BASE_URL or config.base_url"
    if isinstance(exc, openai.APIStatusError | anthropic.APIStatusError):
        return f"{model}: the model server answered {exc.status_code}: {_short(exc.message)}"
    if isinstance(exc, openai.APIResponseValidationError | ValueError) and (
        "json" in str(exc).lower() or "expecting value" in str(exc).lower()
    ):
        return f"{model}: the model server sent a response that is not valid JSON"
    if isinstance(exc, httpx.HTTPError):
        return f"{model}: HTTP error talking to the model server: {_short(str(exc))}"
    return f"{model}: {type(exc).__name__}: {_short(str(exc))}"


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
