"""Every error leaves the API as `{"detail": ..., "code": ...}`; this is the one mapping."""

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from zerg.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MisdirectedRequest,
    NotFound,
    TooLarge,
    TooMany,
    Unauthorized,
    ZergError,
)

logger = logging.getLogger(__name__)

_STATUS_OF: dict[type[ZergError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    Forbidden: 403,
    Unauthorized: 401,
    TooLarge: 413,
    TooMany: 429,
    MisdirectedRequest: 421,
}

_CODE_OF_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_response(status: int, detail: str, code: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code, **extra}, status_code=status)


def _status_of(error: ZergError) -> int:
    for cls in type(error).__mro__:
        if cls in _STATUS_OF:
            return _STATUS_OF[cls]
    return 400


def _describe(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        return (
            f"the request body is not valid JSON ({reason})"
            if reason
            else ("the request body is not valid JSON")
        )
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


def response_for(error: ZergError) -> JSONResponse:
    """The error as the API answers it (also a WebSocket handshake's denial)."""
    return error_response(_status_of(error), error.detail, error.code)


# The dashboard's renderer of an error as a page: None when the request is not a page's.
PageRenderer = Callable[[Request, int, str, str], Response | None]


def _page(request: Request, status: int, detail: str, code: str) -> Response | None:
    render: PageRenderer | None = getattr(request.app.state, "error_page", None)
    return None if render is None else render(request, status, detail, code)


async def _on_zerg_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ZergError)
    status = _status_of(exc)
    return _page(request, status, exc.detail, exc.code) or error_response(
        status, exc.detail, exc.code
    )


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    detail = "invalid request: " + "; ".join(_describe(e) for e in exc.errors())
    return error_response(422, detail, "validation_error", errors=errors)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    if status == 404 and detail is None:
        detail = "no such route; see /docs for the API"
    code = _CODE_OF_STATUS.get(status, "internal_error" if status >= 500 else "http_error")
    if status == 404 and (page := _page(request, status, "there is no such page", code)):
        return page
    return JSONResponse(
        {"detail": detail or phrase, "code": code},
        status_code=status,
        headers=exc.headers,
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    detail = "internal server error; the server log has the details"
    return _page(request, 500, detail, "internal_error") or error_response(
        500, detail, "internal_error"
    )


def install_error_handlers(app: FastAPI, error_page: PageRenderer | None = None) -> None:
    """The API's JSON errors; `error_page` renders those of the dashboard's pages."""
    app.state.error_page = error_page
    app.add_exception_handler(ZergError, _on_zerg_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
