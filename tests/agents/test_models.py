"""Model providers: which endpoints may receive the server's API keys."""

from typing import Any

import pytest
from pydantic import SecretStr

from zerg.agents.models import ModelConfigError, build_chat_model, normalise_base_url
from zerg.settings import Settings


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("http://localhost:11434/v1", "http://localhost:11434/v1"),
        ("HTTP://LocalHost:11434/v1/", "http://localhost:11434/v1"),
        ("https://api.example.com:443/v1", "https://api.example.com/v1"),
        ("http://api.example.com:80", "http://api.example.com"),
        ("http://api.example.com:443/", "http://api.example.com:443"),
        ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
        ("http://user@host/V1", "http://user@host/V1"),  # a path keeps its case
        ("  http://host/v1  ", "http://host/v1"),
        ("ftp://host/v1", None),
        ("http:///v1", None),
        ("http://host:99999/v1", None),
        ("http://[nope/v1", None),
        ("not a url", None),
    ],
)
def test_normalise_base_url(url: str, normalised: str | None) -> None:
    assert normalise_base_url(url) == normalised


def keyed(**fields: Any) -> Settings:
    return Settings(
        openai_api_key=SecretStr("sk-openai"), anthropic_api_key=SecretStr("sk-ant"), **fields
    )


@pytest.mark.parametrize("model", ["openai:gpt-4o-mini", "anthropic:claude-test"])
def test_an_unlisted_base_url_is_refused_before_any_call(model: str) -> None:
    config = {"base_url": "http://127.0.0.1:8799/v1"}

    with pytest.raises(ModelConfigError, match="ZERG_MODEL_BASE_URLS"):
        build_chat_model(model, config, keyed())
    with pytest.raises(ModelConfigError, match="not an allowed model endpoint"):
        build_chat_model(model, {"base_url": 8799}, keyed())


@pytest.mark.parametrize("model", ["openai:gpt-4o-mini", "anthropic:claude-test"])
def test_a_listed_base_url_is_used(model: str) -> None:
    settings = keyed(model_base_urls="http://a.example/v1, http://127.0.0.1:8799/v1/")

    chat = build_chat_model(model, {"base_url": "http://127.0.0.1:8799/v1"}, settings)

    # ChatOpenAI names it openai_api_base, ChatAnthropic anthropic_api_url.
    endpoint = getattr(chat, "openai_api_base", None) or getattr(chat, "anthropic_api_url", None)
    assert endpoint == "http://127.0.0.1:8799/v1"


def test_openai_base_url_is_trusted_for_openai_only() -> None:
    settings = keyed(openai_base_url="http://127.0.0.1:8799/v1")
    config = {"base_url": "http://127.0.0.1:8799/v1"}

    assert build_chat_model("openai:gpt-4o-mini", config, settings) is not None
    assert build_chat_model("openai:gpt-4o-mini", {}, settings) is not None
    with pytest.raises(ModelConfigError):
        build_chat_model("anthropic:claude-test", config, settings)
