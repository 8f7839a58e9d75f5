"""/login and /logout: the dashboard's sign-in with a user name and password."""

import time
from collections import deque
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from zerg.api.auth import SESSION_COOKIE, AuthMode, check_origin
from zerg.api.deps import SessionDep, SettingsDep
from zerg.errors import TooMany, Unauthorized
from zerg.services.login_sessions import end_session, start_session
from zerg.services.users import check_password
from zerg.web.pages import render, set_cookie
from zerg.web.security import check_form_csrf

router = APIRouter(include_in_schema=False)

FAILURES_ALLOWED = 10
FAILURE_WINDOW_S = 300.0


class FailedSignIns:
    """Recent failed sign-ins per client address: past FAILURES_ALLOWED in the window, the
    address must wait, so a password cannot be guessed at the speed of the network. Bounded:
    the oldest addresses are forgotten first."""

    def __init__(self, max_addresses: int = 10_000) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._max_addresses = max_addresses

    def check(self, address: str) -> None:
        recent = self._recent(address)
        if len(recent) >= FAILURES_ALLOWED:
            wait = int(recent[0] + FAILURE_WINDOW_S - time.monotonic()) + 1
            raise TooMany(
                f"too many failed sign-ins from this address; try again in {wait} s",
                code="too_many_sign_ins",
            )

    def failed(self, address: str) -> None:
        self._recent(address).append(time.monotonic())
        if len(self._failures) > self._max_addresses:
            del self._failures[next(iter(self._failures))]

    def _recent(self, address: str) -> deque[float]:
        recent = self._failures.setdefault(address, deque(maxlen=FAILURES_ALLOWED))
        while recent and recent[0] < time.monotonic() - FAILURE_WINDOW_S:
            recent.popleft()
        return recent


def _failures(request: Request) -> FailedSignIns:
    """The app's record of failed sign-ins (made on first use)."""
    state = request.app.state
    if not hasattr(state, "failed_sign_ins"):
        state.failed_sign_ins = FailedSignIns()
    failures: FailedSignIns = state.failed_sign_ins
    return failures


def _local_mode(request: Request) -> bool:
    mode: AuthMode = request.app.state.auth_mode
    return not mode.required()


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never `//host` or a URL)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    if _local_mode(request):
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", dependencies=[Depends(check_form_csrf)])
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """Sign in: a session cookie, then the page the user was going to."""
    check_origin(request)
    address = request.client.host if request.client else "unknown"
    failures = _failures(request)
    failures.check(address)
    try:
        user = check_password(username, password, session=session)
    except Unauthorized as error:
        failures.failed(address)
        context = {"next": _safe_next(next), "error": error.detail, "username": username}
        return render(request, "login.html", context, status=401)
    lifetime = timedelta(days=settings.session_days)
    token = start_session(user, lifetime=lifetime, session=session)
    session.commit()
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token, max_age=int(lifetime.total_seconds()))
    return response


@router.post("/logout", dependencies=[Depends(check_form_csrf)])
def logout(request: Request, session: SessionDep) -> Response:
    """Sign out: the session ends on the server, not only in this browser."""
    check_origin(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        end_session(token, session=session)
        session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
