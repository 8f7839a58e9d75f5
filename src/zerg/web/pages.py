"""Rendering the dashboard's pages: one Jinja2 environment, the context every page gets, and
the pages for errors (the API's errors stay JSON)."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

import zerg
from zerg.api.auth import SESSION_COOKIE
from zerg.services.login_sessions import csrf_token, new_browser_secret

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
# The cookie a browser without a session (local mode) binds its CSRF tokens to.
BROWSER_COOKIE = "zerg_browser"

templates = Jinja2Templates(directory=HERE / "templates")

# Every page: scripts, styles and connections from this server only (no inline script can run,
# so text that slipped past escaping still cannot act), and no framing by other sites (a
# hidden ▶ Play under another site's button).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # A page may show a secret once, and none should outlive a sign-out in a shared cache.
    "Cache-Control": "no-store",
}


def _when(value: datetime | None, tz: Any = UTC) -> str:
    """A time as the dashboard shows it: UTC (or `tz`), to the second."""
    if value is None:
        return "—"
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def _duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms // 60_000} min {ms % 60_000 // 1000} s"


def _cost(usd: float | None) -> str:
    return "—" if usd is None else f"${usd:.4f}"


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# A tool output (or a tool call's arguments) longer than this is folded: its start is shown
# and the rest is a click away, so one big HTTP body does not bury the conversation.
FOLD_LINES = 40
FOLD_CHARS = 3000
HEAD_LINES = 12
HEAD_CHARS = 1200


@dataclass(frozen=True)
class Readable:
    """A value as a message shows it: `text` (pretty JSON when it is JSON), and `head`, the
    start shown while the rest is folded (None when the whole is short enough)."""

    text: str
    is_json: bool
    head: str | None
    lines: int


def readable(value: Any) -> Readable:
    """Tool output (a string) or tool-call arguments (JSON) made readable."""
    parsed = _json_container(value) if isinstance(value, str) else value
    is_json = parsed is not None
    text = json.dumps(parsed, indent=2, ensure_ascii=False, default=str) if is_json else value
    lines = text.count("\n") + 1
    head = None
    if lines > FOLD_LINES or len(text) > FOLD_CHARS:
        head = "\n".join(text.splitlines()[:HEAD_LINES])[:HEAD_CHARS]
    return Readable(text, is_json, head, lines)


def _json_container(text: str) -> Any:
    """The object or array `text` holds, or None: a bare number or string reads fine as is."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


templates.env.filters.update(
    when=_when, duration=_duration, cost=_cost, pretty_json=_pretty_json, readable=readable
)
templates.env.globals["version"] = zerg.__version__


def browser_secret(request: Request) -> str | None:
    """What this browser's CSRF tokens are bound to: its session, or (local mode) its cookie."""
    return request.cookies.get(SESSION_COOKIE) or request.cookies.get(BROWSER_COOKIE)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """Page `name` with `context`, plus what every page uses: the actor, the CSRF token, and
    whether the dashboard has users (so shows a sign-out button)."""
    secret = browser_secret(request)
    issued = None
    if secret is None:
        secret = issued = new_browser_secret()
    page = {
        "actor": getattr(request.state, "actor", None),
        "csrf_token": csrf_token(secret),
        "signed_in": SESSION_COOKIE in request.cookies,
        **(context or {}),
    }
    response = templates.TemplateResponse(
        request, name, page, status_code=status, headers=PAGE_HEADERS
    )
    if issued is not None:
        set_cookie(request, response, BROWSER_COOKIE, issued, max_age=None, same_site="strict")
    return response


def set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int | None,
    same_site: str = "lax",
) -> None:
    """HttpOnly, SameSite, and Secure when the dashboard is served over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite=same_site,  # type: ignore[arg-type]
        secure=request.url.scheme == "https",
    )


def is_page_request(request: Request) -> bool:
    """Whether an error on this request should be a page: a browser's navigation outside the
    API (the API, webhook deliveries and scripts get JSON)."""
    path = request.url.path
    if path.startswith(("/api/", "/hooks/", "/static/")) or path in ("/api", "/health"):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, detail: str, code: str) -> Response | None:
    """The page for an error on a page request (None for others): a sign-in for 401 on a
    GET, otherwise the error said plainly."""
    if not is_page_request(request):
        return None
    if status == 401 and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    context = {"status": status, "detail": detail, "code": code}
    return render(request, "error.html", context, status=status)
