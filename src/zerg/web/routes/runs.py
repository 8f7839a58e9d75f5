"""/runs: the run history, filtered and paged, new runs appearing live; /runs/{id}: one run,
its timings, usage and error, and its thread's messages."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from zerg.api.deps import SessionDep
from zerg.errors import InvalidInput, NotFound
from zerg.schemas.common import MAX_ID
from zerg.schemas.runs import RunStatus, RunTrigger
from zerg.schemas.threads import MessageRead, ThreadRead
from zerg.services import agents as agents_service
from zerg.services.pagination import DEFAULT_LIMIT, MAX_LIMIT
from zerg.services.runs import get_run, list_runs
from zerg.services.threads import ThreadService
from zerg.services.users import Actor
from zerg.web.pages import render
from zerg.web.security import PageActor

router = APIRouter(include_in_schema=False)
T = TypeVar("T")

FILTERS = ("agent_id", "status", "trigger", "since", "until", "limit")
TRIGGERS: tuple[str, ...] = get_args(RunTrigger)
# The run page shows this many of its thread's messages; the thread page has them all.
MESSAGES_SHOWN = 200


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, actor: PageActor, session: SessionDep) -> HTMLResponse:
    """The run history; a filter that makes no sense is said on the page (422)."""
    context, status = _history(request.query_params, actor, session)
    page = context | {"nav": "runs", "statuses": list(RunStatus), "triggers": TRIGGERS}
    return render(request, "runs.html", page, status=status)


@router.get("/runs-table", response_class=HTMLResponse)
def runs_table(request: Request, actor: PageActor, session: SessionDep) -> HTMLResponse:
    """The history's table alone, for the page to refresh itself as runs come and change."""
    context, status = _history(request.query_params, actor, session)
    return render(request, "_run_table.html", context, status=status)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(run_id: str, request: Request, actor: PageActor, session: SessionDep) -> HTMLResponse:
    """One run: trigger, status, timings, tokens, cost, error, and its thread's messages."""
    run = get_run(_run_id(run_id), actor=actor, session=session)
    agent = agents_service.get_agent(run.agent_id, actor=actor, session=session)
    context = {"nav": "runs", "run": run, "agent": agent, **_thread(run.thread_id, actor, session)}
    return render(request, "run.html", context)


@dataclass(frozen=True)
class RunFilters:
    """The history's query string, checked."""

    agent_id: int | None = None
    status: RunStatus | None = None
    trigger: RunTrigger | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT
    after: str | None = None

    @classmethod
    def parse(cls, query: QueryParams) -> "RunFilters":
        """The filters given (empty fields are no filter); `InvalidInput` says which is wrong."""
        given = {name: value for name, value in query.items() if value.strip()}
        filters = cls(
            agent_id=_optional(given.get("agent_id"), _agent_id),
            status=_optional(given.get("status"), _status),
            trigger=_optional(given.get("trigger"), _trigger),
            since=_optional(given.get("since"), lambda v: _moment("since", v)),
            until=_optional(given.get("until"), lambda v: _moment("until", v)),
            limit=_limit(given.get("limit", str(DEFAULT_LIMIT))),
            after=given.get("after"),
        )
        if filters.since and filters.until and filters.since >= filters.until:
            raise InvalidInput("'from' must be before 'until'", code="invalid_time_range")
        return filters


def _history(query: QueryParams, actor: Actor, session: Session) -> tuple[dict[str, Any], int]:
    """The history's context and status: a page of runs, or what is wrong with the filters."""
    form = {name: query.get(name, "") for name in FILTERS}
    agents = agents_service.list_agents(actor=actor, session=session, limit=MAX_LIMIT, after=None)
    context: dict[str, Any] = {
        "form": form,
        "agents": agents.items,
        "first_page": not query.get("after"),
        "runs": [],
        "next_cursor": None,
    }
    try:
        filters = RunFilters.parse(query)
        page = list_runs(actor=actor, session=session, **vars(filters))
    except InvalidInput as error:
        return context | {"error": error.detail, "agent_names": {}}, 422
    kept = {name: value for name, value in form.items() if value}
    older = urlencode(kept | {"after": page.next_cursor}) if page.next_cursor else None
    names = agents_service.agent_names(
        (run.agent_id for run in page.items), actor=actor, session=session
    )
    shown = {"runs": page.items, "agent_names": names, "older": older, "newest": urlencode(kept)}
    return context | shown, 200


def _thread(thread_id: int | None, actor: Actor, session: Session) -> dict[str, Any]:
    """The run's thread and its first messages (none when the thread was deleted)."""
    if thread_id is None:
        return {"thread": None, "messages": [], "more_messages": False}
    thread = ThreadService.get_thread(session, thread_id, actor=actor)
    page = ThreadService.list_messages(
        session, thread_id, actor=actor, limit=MESSAGES_SHOWN, after=None
    )
    return {
        "thread": ThreadRead.model_validate(thread),
        "messages": [MessageRead.model_validate(message) for message in page.items],
        "more_messages": page.next_cursor is not None,
    }


def _optional(value: str | None, parse: Callable[[str], T]) -> T | None:
    return None if value is None else parse(value.strip())


def _number(value: str, highest: int) -> int | None:
    """`value` as a whole number from 1 to `highest`, or None."""
    if value.isascii() and value.isdigit() and 0 < int(value) <= highest:
        return int(value)
    return None


def _run_id(value: str) -> int:
    run_id = _number(value, MAX_ID)
    if run_id is None:
        raise NotFound(f"there is no run {value!r}")
    return run_id


def _agent_id(value: str) -> int:
    agent_id = _number(value, MAX_ID)
    if agent_id is None:
        raise InvalidInput(f"agent {value!r} is not an agent id", code="invalid_agent_id")
    return agent_id


def _status(value: str) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        known = ", ".join(status.value for status in RunStatus)
        raise InvalidInput(
            f"status {value!r} is not one of {known}", code="invalid_status"
        ) from None


def _trigger(value: str) -> RunTrigger:
    if value not in TRIGGERS:
        known = ", ".join(TRIGGERS)
        raise InvalidInput(f"trigger {value!r} is not one of {known}", code="invalid_trigger")
    return value  # type: ignore[return-value]


def _moment(name: str, value: str) -> datetime:
    """A datetime-local field's value, read as UTC (an explicit offset is honoured)."""
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{name} {value!r} is not a date and time like 2026-11-30T09:00 (UTC)",
            code="invalid_datetime",
        ) from None


def _limit(value: str) -> int:
    limit = _number(value, MAX_LIMIT)
    if limit is not None:
        return limit
    raise InvalidInput(f"limit {value!r} must be 1 to {MAX_LIMIT}", code="invalid_limit")
