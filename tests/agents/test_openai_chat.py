"""`openai:` models send their conversation without the SDK's walk over it, and the body the
model server receives is the one the stock client sends: driven through the real client
against the fake server, side by side with langchain-openai's own ChatOpenAI."""

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai.resources.chat.completions import completions as sdk_completions
from pydantic import BaseModel, SecretStr

from tests.support.openai_server import FakeOpenAI
from zerg.agents.models import build_chat_model
from zerg.agents.openai_chat import WireChatOpenAI
from zerg.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@tool
def lookup(city: str, days: int = 1) -> str:
    """Look up the weather of a city."""
    return f"sunny in {city}"


CONVERSATION: list[BaseMessage] = [
    SystemMessage("You are terse."),
    HumanMessage(
        content=[
            {"type": "text", "text": "What is in this picture, and the weather in Oslo?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ]
    ),
    AIMessage(
        "",
        tool_calls=[{"name": "lookup", "args": {"city": "Oslo", "days": 2}, "id": "call_1"}],
    ),
    ToolMessage("sunny in Oslo \u2600 \x00", tool_call_id="call_1", name="lookup"),
    AIMessage("A cat. Sunny."),
    HumanMessage('Thanks — and "tomorrow"?'),
]


def zergs(server: FakeOpenAI, **config: Any) -> ChatOpenAI:
    """The model an agent with `openai:gpt-test` gets."""
    settings = Settings(
        openai_api_key=SecretStr("sk-test"),
        openai_base_url=None,
        model_base_urls=f"{server.base_url}/v1",
    )
    model = build_chat_model(
        "openai:gpt-test", {"base_url": f"{server.base_url}/v1", "max_retries": 0}, settings
    )
    assert isinstance(model, WireChatOpenAI)
    return model.model_copy(update=config)


def stock(server: FakeOpenAI, **config: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-test",
        base_url=f"{server.base_url}/v1",
        api_key=SecretStr("sk-test"),
        max_retries=0,
        stream_usage=True,
        **config,
    )


async def body_sent(server: FakeOpenAI, model: ChatOpenAI, *, stream: bool) -> dict[str, Any]:
    server.reply_text("Sunny tomorrow too.")
    bound = model.bind_tools([lookup], tool_choice="auto")
    if stream:
        chunks = [chunk async for chunk in bound.astream(CONVERSATION)]
        answer = "".join(str(chunk.content) for chunk in chunks)
    else:
        answer = str((await bound.ainvoke(CONVERSATION)).content)
    assert answer == "Sunny tomorrow too."
    return server.last


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
async def test_the_server_receives_the_stock_clients_body(
    openai_server: FakeOpenAI, stream: bool
) -> None:
    ours = await body_sent(openai_server, zergs(openai_server), stream=stream)
    theirs = await body_sent(openai_server, stock(openai_server), stream=stream)
    assert ours == theirs
    assert [m["role"] for m in ours["messages"]] == [
        "system", "user", "assistant", "tool", "assistant", "user"
    ]  # fmt: skip
    assert ours["tools"][0]["function"]["name"] == "lookup"


async def test_the_conversation_skips_the_sdks_walk(
    openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    walked: list[dict[str, Any]] = []
    walk = sdk_completions.async_maybe_transform

    async def recording(data: Any, expected_type: Any) -> Any:
        walked.append(data)
        return await walk(data, expected_type)

    monkeypatch.setattr(sdk_completions, "async_maybe_transform", recording)
    await body_sent(openai_server, stock(openai_server), stream=False)
    assert len(walked[-1]["messages"]) == len(CONVERSATION)  # the stock client: walked
    await body_sent(openai_server, zergs(openai_server), stream=False)
    assert walked[-1]["messages"] == []
    assert not isinstance(walked[-1].get("tools"), list)  # the SDK's `omit`
    assert len(openai_server.last["messages"]) == len(CONVERSATION)  # sent all the same


async def test_the_agents_extra_body_still_wins(openai_server: FakeOpenAI) -> None:
    model = zergs(openai_server, extra_body={"top_k": 3, "tools": []})
    await body_sent(openai_server, model, stream=False)
    assert openai_server.last["top_k"] == 3
    assert openai_server.last["tools"] == []  # as the stock client's merge does
    assert len(openai_server.last["messages"]) == len(CONVERSATION)


class Forecast(BaseModel):
    city: str
    sunny: bool


async def test_structured_output_goes_through_the_sdks_parse(openai_server: FakeOpenAI) -> None:
    """Structured output (`response_format`) still works: its requests go through `parse`."""
    openai_server.reply_text('{"city": "Oslo", "sunny": true}')
    model = zergs(openai_server).with_structured_output(Forecast, method="json_schema")
    assert await model.ainvoke("Weather in Oslo?") == Forecast(city="Oslo", sunny=True)
    assert openai_server.last["messages"] == [{"role": "user", "content": "Weather in Oslo?"}]
    assert openai_server.last["response_format"]["type"] == "json_schema"
