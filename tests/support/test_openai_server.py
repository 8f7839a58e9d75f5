"""The fake OpenAI server, driven by the real client: langchain-openai's ChatOpenAI over HTTP."""

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.support.openai_server import (
    FakeOpenAI,
    Text,
    Usage,
    count_tokens,
    tool_then_answer,
)


@tool
def search(query: str) -> str:
    """Search the knowledge base."""
    return f"results for {query}"


def chat(server: FakeOpenAI, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-test",
        base_url=server.base_url + "/v1",
        api_key="test-key",  # type: ignore[arg-type]
        max_retries=0,
        **kwargs,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_tool_call(openai_server: FakeOpenAI) -> None:
    openai_server.reply_tool_call("search", {"query": "zerg"}, call_id="call_abc")
    reply = chat(openai_server).bind_tools([search]).invoke("find zerg")  # 9 characters
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls == [
        {"name": "search", "args": {"query": "zerg"}, "id": "call_abc", "type": "tool_call"}
    ]
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == 9 // 4 + 1
    output = count_tokens("search" + json.dumps({"query": "zerg"}))
    assert reply.usage_metadata["output_tokens"] == output
    assert reply.usage_metadata["total_tokens"] == 3 + output
    body = openai_server.last
    assert body["model"] == "gpt-test"
    assert body["messages"] == [{"role": "user", "content": "find zerg"}]
    assert body["tools"][0]["function"]["name"] == "search"


def test_text_answer_with_explicit_usage(openai_server: FakeOpenAI) -> None:
    openai_server.reply_text("Hello from the fake.", usage=Usage(100, 7))
    reply = chat(openai_server).invoke("hi")
    assert reply.content == "Hello from the fake."
    assert isinstance(reply, AIMessage) and reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == 100
    assert reply.usage_metadata["output_tokens"] == 7
    assert reply.usage_metadata["total_tokens"] == 107


def test_records_authorization_and_completion(openai_server: FakeOpenAI) -> None:
    openai_server.reply_text("ok")
    chat(openai_server).invoke("hi")
    assert openai_server.count() == 1
    [request] = openai_server.requests
    assert request.authorization == "Bearer test-key"
    assert request.state == "completed"
    assert openai_server.completed == [request]
    assert openai_server.cut_off == []


def test_streaming_text_reports_usage(openai_server: FakeOpenAI) -> None:
    text = "Streaming works, one token at a time."
    openai_server.reply_text(text)
    chunks = list(chat(openai_server).stream("hi there", stream_usage=True))
    assert "".join(str(c.content) for c in chunks) == text
    assert sum(1 for c in chunks if c.content) > 3
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert usage == [
        {
            "input_tokens": len("hi there") // 4 + 1,
            "output_tokens": count_tokens(text),
            "total_tokens": len("hi there") // 4 + 1 + count_tokens(text),
            "input_token_details": {},
            "output_token_details": {},
        }
    ]
    assert openai_server.last["stream"] is True
    assert openai_server.last["stream_options"] == {"include_usage": True}
    assert openai_server.requests[-1].state == "completed"


def test_streaming_tool_call(openai_server: FakeOpenAI) -> None:
    args = {"query": "a fairly long query so the arguments arrive in pieces"}
    openai_server.reply_tool_call("search", args)
    merged: AIMessageChunk | None = None
    for chunk in chat(openai_server).bind_tools([search]).stream("go"):
        assert isinstance(chunk, AIMessageChunk)
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    assert merged.tool_calls == [
        {"name": "search", "args": args, "id": "call_1", "type": "tool_call"}
    ]
    assert merged.response_metadata["finish_reason"] == "tool_calls"
    assert "stream_options" not in openai_server.last  # no stream_usage: a custom base_url


def test_error_500(openai_server: FakeOpenAI) -> None:
    openai_server.reply_error(500)
    with pytest.raises(openai.InternalServerError, match="fake OpenAI error"):
        chat(openai_server).invoke("hi")


def test_error_with_custom_body_and_status(openai_server: FakeOpenAI) -> None:
    openai_server.reply_error(429, {"error": {"message": "slow down", "type": "rate_limit"}})
    with pytest.raises(openai.RateLimitError, match="slow down"):
        chat(openai_server).invoke("hi")


def test_bad_json_raises(openai_server: FakeOpenAI) -> None:
    openai_server.reply_bad_json()
    with pytest.raises(ValueError):  # the SDK lets json.JSONDecodeError through
        chat(openai_server).invoke("hi")


def test_hang_times_out_and_is_recorded_as_cut_off(openai_server: FakeOpenAI) -> None:
    openai_server.reply_hang()
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        chat(openai_server, timeout=0.3).invoke("hi")
    assert time.monotonic() - started < 3
    wait_until(lambda: openai_server.cut_off == openai_server.requests)
    assert openai_server.completed == []


def test_hang_release_then_answers(openai_server: FakeOpenAI) -> None:
    openai_server.reply_hang(then=Text("finally"))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(chat(openai_server).invoke, "hi")
        wait_until(lambda: openai_server.count() == 1)
        time.sleep(0.1)
        assert not future.done()
        openai_server.release()
        assert future.result(timeout=5).content == "finally"


def test_hang_for_seconds(openai_server: FakeOpenAI) -> None:
    openai_server.reply_hang(seconds=0.2, then=Text("late"))
    started = time.monotonic()
    assert chat(openai_server).invoke("hi").content == "late"
    assert time.monotonic() - started >= 0.2


def test_stop_ends_hanging_requests() -> None:
    server = FakeOpenAI().start()
    server.reply_hang()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(chat(server).invoke, "hi")
        wait_until(lambda: server.count() == 1)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 3
        with pytest.raises(openai.InternalServerError, match="hang ended"):
            future.result(timeout=5)


def test_stream_cut_off_by_client(openai_server: FakeOpenAI) -> None:
    openai_server.stream_delay = 0.05
    openai_server.reply_text("many words " * 20)
    for _ in chat(openai_server).stream("hi"):
        break  # closes the response mid-stream
    wait_until(lambda: openai_server.requests[-1].state == "cut_off")


def test_no_reply_and_no_policy_is_a_clear_500(openai_server: FakeOpenAI) -> None:
    with pytest.raises(openai.InternalServerError, match="no reply queued and no policy set"):
        chat(openai_server).invoke("hi")


def test_queue_before_policy(openai_server: FakeOpenAI) -> None:
    openai_server.set_policy(lambda body: Text("from policy"))
    openai_server.reply_text("from queue")
    llm = chat(openai_server)
    assert llm.invoke("a").content == "from queue"
    assert llm.invoke("b").content == "from policy"
    assert openai_server.pending() == 0


def run_agent(llm: ChatOpenAI, question: str) -> list[BaseMessage]:
    """A minimal agent loop: call tools until the model answers."""
    model = llm.bind_tools([search])
    messages: list[BaseMessage] = [HumanMessage(question)]
    for _ in range(5):
        reply = model.invoke(messages)
        assert isinstance(reply, AIMessage)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        for call in reply.tool_calls:
            messages.append(ToolMessage(search.invoke(call["args"]), tool_call_id=call["id"]))
    raise AssertionError("agent did not finish")


def test_tool_then_answer_policy(openai_server: FakeOpenAI) -> None:
    openai_server.set_policy(tool_then_answer("search", {"query": "zerg"}))
    messages = run_agent(chat(openai_server), "what is zerg?")
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert messages[-1].content == "search returned: results for zerg"
    second = openai_server.requests[1].body["messages"]
    assert second[1]["tool_calls"][0]["function"]["name"] == "search"
    assert second[2] == {"role": "tool", "tool_call_id": "call_1", "content": "results for zerg"}


def test_tool_then_answer_under_concurrency(openai_server: FakeOpenAI) -> None:
    openai_server.set_policy(tool_then_answer("search", {"query": "q"}, answer="all done"))
    llm = chat(openai_server)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: run_agent(llm, f"question {i}"), range(16)))
    assert all(r[-1].content == "all done" and len(r) == 4 for r in results)
    assert openai_server.count() == 32
    assert len(openai_server.completed) == 32


def test_models_and_unknown_routes(openai_server: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=openai_server.base_url + "/v1", api_key="k", max_retries=0)
    assert [m.id for m in client.models.list()] == ["gpt-test"]
    client.close()
    response = httpx.post(openai_server.base_url + "/v1/embeddings", json={})
    assert response.status_code == 404
    response = httpx.post(openai_server.base_url + "/v1/chat/completions", content=b"{nope")
    assert response.status_code == 400
    assert openai_server.count() == 0
