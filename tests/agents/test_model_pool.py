"""Pooled model clients: one chat model per model, endpoint, key and limits and one HTTP client
per provider on each event loop, exercised through the real client against the fake server."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from tests.support.openai_server import FakeOpenAI, Reply, Text
from zerg.agents import models
from zerg.agents.models import ModelConfigError, chat_model, close_model_clients
from zerg.agents.scripted import ScriptedChatModel
from zerg.settings import Settings

pytestmark = pytest.mark.anyio

MODEL = "openai:gpt-test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the pool is kept per asyncio event loop


@pytest.fixture
async def pool() -> AsyncIterator[None]:
    """Closes the test loop's pooled clients after the test (an open one outlives its loop)."""
    yield
    await close_model_clients()


def keyed(server: FakeOpenAI, key: str | None = "sk-test") -> Settings:
    """Settings that list the fake server, as an operator would (nothing from the environment)."""
    return Settings(
        openai_api_key=SecretStr(key) if key is not None else None,
        openai_base_url=None,
        anthropic_api_key=None,
        model_base_urls=f"{server.base_url}/v1, {localhost(server)}",
    )


def localhost(server: FakeOpenAI) -> str:
    """The fake server's endpoint under another name: another base_url."""
    return f"{server.base_url.replace('127.0.0.1', 'localhost')}/v1"


def on(server: FakeOpenAI, **config: Any) -> dict[str, Any]:
    return {"base_url": f"{server.base_url}/v1", "max_retries": 0, **config}


def http_client(model: BaseChatModel) -> Any:
    assert isinstance(model, ChatOpenAI)
    return model.http_async_client


def echo(body: dict[str, Any]) -> Reply:
    return Text(f"echo: {body['messages'][-1]['content']}")


async def test_the_same_call_shares_one_model_and_other_calls_share_its_client(
    openai_server: FakeOpenAI, pool: None
) -> None:
    first, again = await asyncio.gather(
        chat_model(MODEL, on(openai_server), keyed(openai_server)),
        chat_model(MODEL, on(openai_server), keyed(openai_server)),  # equal, not the same
    )
    elsewhere = await chat_model(
        MODEL, on(openai_server, base_url=localhost(openai_server)), keyed(openai_server)
    )
    slower = await chat_model(MODEL, on(openai_server, request_timeout_s=5), keyed(openai_server))

    assert again is first
    assert elsewhere is not first
    assert slower is not first
    assert isinstance(elsewhere, ChatOpenAI)
    assert elsewhere.openai_api_base == localhost(openai_server)
    assert http_client(elsewhere) is http_client(first)
    assert http_client(slower) is http_client(first)


async def test_another_key_never_reuses_a_model_built_with_the_old_one(
    openai_server: FakeOpenAI, pool: None
) -> None:
    openai_server.set_policy(echo)

    old = await chat_model(MODEL, on(openai_server), keyed(openai_server, "sk-old"))
    new = await chat_model(MODEL, on(openai_server), keyed(openai_server, "sk-new"))
    await old.ainvoke("hi")
    await new.ainvoke("hi")

    assert new is not old
    assert [r.authorization for r in openai_server.requests] == ["Bearer sk-old", "Bearer sk-new"]


def test_each_event_loop_has_models_and_a_client_of_its_own(openai_server: FakeOpenAI) -> None:
    openai_server.set_policy(echo)

    async def build() -> BaseChatModel:
        model = await chat_model(MODEL, on(openai_server), keyed(openai_server))
        answer = await model.ainvoke("hi")
        assert answer.content == "echo: hi"
        return model

    loops = [asyncio.new_event_loop() for _ in range(2)]
    try:
        first, second = (loop.run_until_complete(build()) for loop in loops)
        first_again = loops[0].run_until_complete(build())
    finally:
        for loop in loops:
            loop.run_until_complete(close_model_clients())
            loop.close()

    assert second is not first
    assert http_client(second) is not http_client(first)
    assert first_again is first  # each loop keeps its own pool
    assert openai_server.count() == 3


async def test_a_pooled_model_answers_many_calls_at_once(
    openai_server: FakeOpenAI, pool: None
) -> None:
    openai_server.reply_text("Hello.")
    model = await chat_model(MODEL, on(openai_server), keyed(openai_server))

    assert (await model.ainvoke("hi")).content == "Hello."

    openai_server.set_policy(echo)
    questions = [f"question {n}" for n in range(20)]
    answers = await asyncio.gather(*(model.ainvoke(q) for q in questions))

    assert [a.content for a in answers] == [f"echo: {q}" for q in questions]
    assert len(openai_server.completed) == 1 + len(questions)


async def test_closing_the_clients_closes_the_pool_and_the_next_call_builds_anew(
    openai_server: FakeOpenAI, pool: None
) -> None:
    openai_server.set_policy(echo)
    old = await chat_model(MODEL, on(openai_server), keyed(openai_server))
    await old.ainvoke("hi")

    await close_model_clients()
    new = await chat_model(MODEL, on(openai_server), keyed(openai_server))

    assert http_client(old).is_closed
    assert new is not old
    assert http_client(new) is not http_client(old)
    assert not http_client(new).is_closed
    assert (await new.ainvoke("again")).content == "echo: again"


async def test_an_unlisted_base_url_is_refused_before_any_client_is_built(
    openai_server: FakeOpenAI, pool: None
) -> None:
    unlisted = {"base_url": "http://127.0.0.1:8799/v1"}

    with pytest.raises(ModelConfigError, match="ZERG_MODEL_BASE_URLS"):
        await chat_model(MODEL, unlisted, keyed(openai_server))

    assert asyncio.get_running_loop() not in models._LOOPS
    assert openai_server.count() == 0


async def test_an_openai_model_without_a_key_names_the_key(
    openai_server: FakeOpenAI, pool: None
) -> None:
    with pytest.raises(ModelConfigError, match="OPENAI_API_KEY"):
        await chat_model(MODEL, {}, keyed(openai_server, key=None))


async def test_a_scripted_model_is_built_per_call_outside_the_pool(
    openai_server: FakeOpenAI, pool: None
) -> None:
    first = await chat_model("scripted:demo", {}, keyed(openai_server))
    second = await chat_model("scripted:demo", {}, keyed(openai_server))

    assert isinstance(first, ScriptedChatModel)
    assert second is not first
    assert asyncio.get_running_loop() not in models._LOOPS
