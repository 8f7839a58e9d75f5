"""A local OpenAI-compatible Chat Completions server for benchmarks: the model, made cheap.

It plays the benchmark job's model: asked without a tool result in the conversation, it calls
the `calculator` tool on "6 * 7"; asked again with the tool's answer, it answers in text. Every
answer can wait `--delay` seconds first, as a real model would, without holding anything up:
the server is a bare asyncio protocol (HTTP/1.1 keep-alive, JSON or Server-Sent Events) in its
own process, so it is never the bottleneck of what it measures.

    python benchmarks/model_server.py --port 8123 [--delay 1.5]

prints `ready <port>` on stdout once it listens.
"""

import argparse
import asyncio
import contextlib
import json
import time
from typing import Any

TOOL_ARGS = json.dumps({"expression": "6 * 7"})
ANSWER = "6 * 7 = 42."


def reply_for(body: dict[str, Any]) -> dict[str, Any]:
    """The assistant message: a calculator call, or the answer once a tool has spoken."""
    if any(m.get("role") == "tool" for m in body.get("messages", [])):
        return {"role": "assistant", "content": ANSWER}
    call = {"id": "call_calc", "type": "function"}
    call["function"] = {"name": "calculator", "arguments": TOOL_ARGS}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def usage_for(body: dict[str, Any], message: dict[str, Any]) -> dict[str, int]:
    prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4 + 1
    completion = len(message["content"] or TOOL_ARGS) // 4 + 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion(body: dict[str, Any]) -> bytes:
    message = reply_for(body)
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "bench"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage_for(body, message),
        }
    ).encode()


def chunks(body: dict[str, Any]) -> bytes:
    """The same answer as `chat.completion.chunk` events: one delta, the finish, the usage."""
    message = reply_for(body)
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0}
    head["model"] = body.get("model", "bench")
    delta: dict[str, Any] = {"role": "assistant", "content": message["content"]}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{"index": 0, **message["tool_calls"][0]}]
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    events = [
        {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
    ]
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append({**head, "choices": [], "usage": usage_for(body, message)})
    lines = [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


class ModelProtocol(asyncio.Protocol):
    """HTTP/1.1 on one connection: requests answered in order, each after the delay."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.worker = asyncio.get_running_loop().create_task(self.answer_all())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < head_end + 4 + length:
                return
            body = self.buffer[head_end + 4 : head_end + 4 + length]
            self.buffer = self.buffer[head_end + 4 + length :]
            self.queue.put_nowait((head[0], body))

    async def answer_all(self) -> None:
        while True:
            request_line, body = await self.queue.get()
            if self.delay:
                await asyncio.sleep(self.delay)
            self.respond(request_line, body)

    def respond(self, request_line: str, raw: bytes) -> None:
        assert self.transport is not None
        if not request_line.startswith("POST ") or "/chat/completions" not in request_line:
            self.send(404, "application/json", b'{"error": {"message": "not found"}}')
            return
        body = json.loads(raw)
        if body.get("stream"):
            self.send(200, "text/event-stream", chunks(body))
        else:
            self.send(200, "application/json", completion(body))

    def send(self, status: int, content_type: str, payload: bytes) -> None:
        assert self.transport is not None
        reason = {200: "OK", 404: "Not Found"}[status]
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n"
            f"content-length: {len(payload)}\r\n\r\n"
        )
        self.transport.write(head.encode() + payload)


async def serve(port: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ModelProtocol(delay), "127.0.0.1", port, backlog=4096)
    print(f"ready {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.delay))


if __name__ == "__main__":
    main()
