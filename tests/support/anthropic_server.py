"""A fake Anthropic Messages API for tests: `POST /v1/messages`, streamed as Anthropic streams
(`message_start`, `content_block_delta` text deltas, `message_delta` with the usage,
`message_stop`), or answered whole. It answers every request with the same text, split into
the given chunks, and records the request bodies."""

import asyncio
import json
import threading
from typing import Any

from starlette.types import Receive, Scope, Send


class FakeAnthropic:
    """An ASGI app; serve it with `serve_in_thread`. Its base URL is the server's root."""

    def __init__(self, chunks: list[str], *, input_tokens: int, output_tokens: int) -> None:
        self.chunks = chunks
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.requests: list[dict[str, Any]] = []
        # While held, a streamed answer stops before its end until `release` is set.
        self.hold_last_chunk = False
        self.release = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body or b"{}")
        self.requests.append(request)
        if scope["path"] != "/v1/messages":
            await _respond(send, 404, b'{"type":"error"}', "application/json")
            return
        if not request.get("stream"):
            answer = {
                "id": "msg_test",
                "type": "message",
                "role": "assistant",
                "model": request.get("model"),
                "content": [{"type": "text", "text": "".join(self.chunks)}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
            }
            await _respond(send, 200, json.dumps(answer).encode(), "application/json")
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for kind, data in self._events(request.get("model")):
            if kind == "message_delta" and self.hold_last_chunk:
                await asyncio.to_thread(self.release.wait)
            frame = f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    def _events(self, model: str | None) -> list[tuple[str, dict[str, Any]]]:
        start = {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 1},
        }
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
        ]
        events += [
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": chunk},
                },
            )
            for chunk in self.chunks
        ]
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    # Cumulative, input included, as the API sends it today.
                    "usage": {
                        "input_tokens": self.input_tokens,
                        "output_tokens": self.output_tokens,
                    },
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return events


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
