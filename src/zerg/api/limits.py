"""The request body cap: a body over `max_body_bytes` is refused with 413, never read whole."""

import re
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zerg.api.errors import error_response


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the cap.

    An HTTPException, not a `zerg.errors.TooLarge`: FastAPI re-raises HTTPExceptions met while
    parsing a body, and turns any other exception there into a 400.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _detail(max_bytes))


class BodyLimit:
    """Pure ASGI middleware that buffers nothing itself.

    A declared Content-Length over the cap is answered before the app runs; a chunked body
    is counted as the app reads it, and reading stops at the first chunk past the cap.
    Paths in `exempt` (routes that enforce a limit of their own) pass untouched.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt: Iterable[re.Pattern[str]] = ()):
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(p.fullmatch(scope["path"]) for p in self.exempt):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)  # the app's error handlers answer it
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, _detail(self.max_bytes), "payload_too_large")
        await response(scope, receive, send)


def _detail(max_bytes: int) -> str:
    return f"the request body is larger than the {max_bytes}-byte limit (ZERG_MAX_BODY_BYTES)"


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:  # the server answers a malformed one itself; count the body instead
        return None
