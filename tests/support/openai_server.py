"""A fake OpenAI Chat Completions server: the only fake in tests that involve an LLM.

Tests drive the real client stack (langchain-openai's ChatOpenAI on top of the openai SDK) over
real HTTP against this server, so request building, SSE parsing, retries and timeouts are all
exercised; only the model's answers are scripted. A uvicorn server on a free loopback port runs a
small raw-ASGI app in a background thread and answers `POST /v1/chat/completions` (plain JSON or,
with `"stream": true`, `chat.completion.chunk` Server-Sent Events) and `GET /v1/models`.

Each answer comes from the FIFO of queued replies (`reply_text`, `reply_tool_call`, ...) or, when
that is empty, from `policy(request_json)` - e.g. `tool_then_answer(...)`, which keys off the
conversation itself so concurrent conversations need no ordering. Token usage is deterministic:
`prompt_tokens` is the characters of all message contents // 4 + 1 and `completion_tokens` the
same for the reply text (or tool name + JSON arguments), unless a `Usage` is given.
"""

import asyncio
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send


def count_tokens(text: str) -> int:
    return len(text) // 4 + 1


def prompt_tokens(body: dict[str, Any]) -> int:
    """Characters of every message's text content (strings or text parts) // 4 + 1."""
    chars = 0
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
    return chars // 4 + 1


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def as_json(self) -> dict[str, int]:
        return {**asdict(self), "total_tokens": self.prompt_tokens + self.completion_tokens}


@dataclass(frozen=True)
class Text:
    text: str
    usage: Usage | None = None


@dataclass(frozen=True)
class ToolCall:
    name: str
    args: dict[str, Any]
    call_id: str | None = None  # None: "call_<n>", numbered per server
    usage: Usage | None = None


@dataclass(frozen=True)
class Error:
    status: int = 500
    body: dict[str, Any] | str | None = None  # None: an OpenAI-style error object


@dataclass(frozen=True)
class BadJson:
    """A 200 whose body is not JSON."""


@dataclass(frozen=True)
class Hang:
    """Block until `release()`, server stop, `seconds` elapse or the client hangs up."""

    seconds: float | None = None
    then: "Reply | None" = None  # answered after the hang; None: a 503


Reply = Text | ToolCall | Error | BadJson | Hang
Policy = Callable[[dict[str, Any]], Reply]


def tool_then_answer(tool_name: str, args: dict[str, Any], answer: str | None = None) -> Policy:
    """Call the tool unless the last message is a tool result; then answer (default: echo it)."""

    def policy(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1] if body.get("messages") else {}
        if last.get("role") != "tool":
            return ToolCall(tool_name, args)
        return Text(answer if answer is not None else f"{tool_name} returned: {last['content']}")

    return policy


@dataclass
class RecordedRequest:
    """One `POST /v1/chat/completions` (other routes are not recorded)."""

    body: dict[str, Any]
    headers: dict[str, str]  # lower-cased names
    state: str = "pending"  # "pending" -> "completed" (response fully sent) or "cut_off"
    arrived_at: float = field(default_factory=time.monotonic)
    hung_up_at: float | None = None  # when the client hung up (time.monotonic), if it did

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


class FakeOpenAI:
    """The server: a context manager, or `start()`/`stop()`, or the `openai_server` fixture."""

    def __init__(self, policy: Policy | None = None, stream_delay: float = 0.0) -> None:
        self.policy = policy  # answers requests when the queue is empty
        self.stream_delay = stream_delay  # seconds between SSE chunks (lets clients hang up)
        self.base_url = ""  # "http://127.0.0.1:<port>"; the OpenAI base URL is this + "/v1"
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._releases = 0
        self._calls = 0
        self._stopping = False
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ---------------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def reply_text(self, text: str, usage: Usage | None = None) -> None:
        self.enqueue(Text(text, usage))

    def reply_tool_call(
        self,
        name: str,
        args: dict[str, Any],
        call_id: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        self.enqueue(ToolCall(name, args, call_id, usage))

    def reply_error(self, status: int = 500, body: dict[str, Any] | str | None = None) -> None:
        self.enqueue(Error(status, body))

    def reply_bad_json(self) -> None:
        self.enqueue(BadJson())

    def reply_hang(self, seconds: float | None = None, then: Reply | None = None) -> None:
        self.enqueue(Hang(seconds, then))

    def set_policy(self, policy: Policy | None) -> None:
        self.policy = policy

    def release(self) -> None:
        """End every request hanging right now."""
        with self._lock:
            self._releases += 1

    # -- inspection --------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def completed(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.state == "completed"]

    @property
    def cut_off(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.state == "cut_off"]

    def count(self) -> int:
        return len(self.requests)

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1].body

    def pending(self) -> int:
        """Queued replies not yet used."""
        with self._lock:
            return len(self._queue)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "FakeOpenAI":
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            self._app, log_level="warning", lifespan="off", ws="none", interface="asgi3"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, args=([sock],), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the HTTP side -----------------------------------------------------------------------
    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET" and scope["path"] == "/v1/models":
            models = [{"id": "gpt-test", "object": "model", "created": 0, "owned_by": "fake"}]
            await _send(send, 200, {"object": "list", "data": models})
            return
        if scope["method"] != "POST" or scope["path"] != "/v1/chat/completions":
            await _send(send, 404, _error(f"fake OpenAI: no route {scope['path']}"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            await _send(send, 400, _error("fake OpenAI: request body is not JSON"))
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        record = RecordedRequest(body, headers)
        with self._lock:
            self._requests.append(record)
            reply = self._queue.popleft() if self._queue else None
        disconnected = asyncio.Event()

        async def watch() -> None:  # the server only learns of a hang-up by receiving
            while (await receive())["type"] != "http.disconnect":
                pass
            record.hung_up_at = time.monotonic()
            disconnected.set()

        watcher = asyncio.create_task(watch())
        try:
            if reply is None:
                reply = self._from_policy(body)
            while isinstance(reply, Hang):
                if not await self._hang(reply, disconnected):
                    break
                reply = reply.then or Error(503, _error("fake OpenAI: hang ended"))
            if not disconnected.is_set():
                await self._answer(send, body, reply, disconnected)
            record.state = "cut_off" if disconnected.is_set() else "completed"
        finally:
            watcher.cancel()

    def _from_policy(self, body: dict[str, Any]) -> Reply:
        if self.policy is None:
            return Error(500, _error("fake OpenAI: no reply queued and no policy set"))
        try:
            return self.policy(body)
        except Exception as exc:
            return Error(500, _error(f"fake OpenAI: policy raised {exc!r}"))

    async def _hang(self, hang: Hang, disconnected: asyncio.Event) -> bool:
        """Wait; False if the client hung up meanwhile."""
        start, releases = time.monotonic(), self._releases
        while not disconnected.is_set():  # polled: release() and stop() come from other threads
            if self._stopping or self._releases != releases:
                break
            if hang.seconds is not None and time.monotonic() - start >= hang.seconds:
                break
            await asyncio.sleep(0.01)
        return not disconnected.is_set()

    async def _answer(
        self, send: Send, body: dict[str, Any], reply: Reply, disconnected: asyncio.Event
    ) -> None:
        if isinstance(reply, Error):
            payload = reply.body if reply.body is not None else _error("fake OpenAI error")
            kind = "text/plain" if isinstance(payload, str) else "application/json"
            await _send(send, reply.status, payload, content_type=kind)
            return
        if isinstance(reply, BadJson):
            await _send(send, 200, "this is not JSON {", content_type="application/json")
            return
        assert isinstance(reply, Text | ToolCall)
        with self._lock:
            self._calls += 1
            number = self._calls
        head = {"id": f"chatcmpl-fake-{number}", "created": 1_700_000_000, "model": body["model"]}
        if isinstance(reply, Text):
            message: dict[str, Any] = {"role": "assistant", "content": reply.text}
            finish, output = "stop", count_tokens(reply.text)
        else:
            arguments = json.dumps(reply.args)
            call = {"id": reply.call_id or f"call_{number}", "type": "function"}
            call["function"] = {"name": reply.name, "arguments": arguments}
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish, output = "tool_calls", count_tokens(reply.name + arguments)
        usage = (reply.usage or Usage(prompt_tokens(body), output)).as_json()
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            completion = {**head, "object": "chat.completion", "choices": [choice]}
            await _send(send, 200, {**completion, "usage": usage})
            return
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        head = {**head, "object": "chat.completion.chunk"}
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for n, chunk in enumerate(_chunks(message, finish, usage, with_usage)):
            if disconnected.is_set():
                return
            if n and self.stream_delay:
                await asyncio.sleep(self.stream_delay)
            data = f"data: {json.dumps({**head, **chunk})}\n\n".encode()
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


def _chunks(
    message: dict[str, Any], finish: str, usage: dict[str, int], with_usage: bool
) -> Iterator[dict[str, Any]]:
    """The chunk bodies OpenAI streams for one message (minus id/created/model/object)."""
    extra = {"usage": None} if with_usage else {}

    def delta(d: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": d, "finish_reason": finish_reason, "logprobs": None}
        return {"choices": [choice], **extra}

    yield delta({"role": "assistant", "content": "" if message["content"] is not None else None})
    for piece in re.findall(r"\s*\S+|\s+$", message["content"] or ""):
        yield delta({"content": piece})
    for index, call in enumerate(message.get("tool_calls", [])):
        fn = call["function"]
        start = {"index": index, "id": call["id"], "type": "function"}
        yield delta({"tool_calls": [{**start, "function": {"name": fn["name"], "arguments": ""}}]})
        for i in range(0, len(fn["arguments"]), 8):
            part = {"arguments": fn["arguments"][i : i + 8]}
            yield delta({"tool_calls": [{"index": index, "function": part}]})
    yield delta({}, finish)
    if with_usage:
        yield {"choices": [], "usage": usage}


def _error(message: str, kind: str = "server_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


async def _send(
    send: Send, status: int, payload: object, content_type: str = "application/json"
) -> None:
    data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(data))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    """A started fake OpenAI server; point ChatOpenAI at `openai_server.base_url + "/v1"`."""
    with FakeOpenAI() as server:
        yield server
