"""Run statistics per UTC day for the charts: counts by status, durations, tokens and cost.

One GROUP BY over the runs table, by the UTC calendar day a run was queued, on SQLite and on
PostgreSQL alike; days without runs are filled in with zeros here.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from zerg import clock
from zerg.models import Agent, Run
from zerg.schemas.runs import RunStatus
from zerg.services.ownership import scoped, visible_agent
from zerg.services.users import Actor

DEFAULT_DAYS = 14


class UtcDay(FunctionElement[str]):
    """The UTC calendar day of a timestamp column, as 'YYYY-MM-DD'."""

    type = String()
    name = "utc_day"
    inherit_cache = True


@compiles(UtcDay, "sqlite")
def _utc_day_sqlite(element: UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite stores UTC timestamps as naive 'YYYY-MM-DD HH:MM:SS...' text (see UTCDateTime).
    return f"strftime('%Y-%m-%d', {compiler.process(element.clauses, **kw)})"


@compiles(UtcDay, "postgresql")
def _utc_day_postgresql(element: UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    # In UTC whatever the session's time zone; the literals (not parameters) keep the
    # expression identical in SELECT and GROUP BY.
    column = compiler.process(element.clauses, **kw)
    return f"to_char(({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@dataclass(frozen=True)
class DayStats:
    """One UTC day's runs (by the day they were queued)."""

    day: date
    runs: dict[RunStatus, int]
    avg_duration_ms: float | None  # of the runs with a duration (finished ones)
    max_duration_ms: int | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float

    @property
    def run_count(self) -> int:
        return sum(self.runs.values())


@dataclass(frozen=True)
class RunStats:
    """The last days' statistics, oldest day first; `agent` when they are one agent's."""

    days: list[DayStats]
    agent: Agent | None

    @property
    def run_count(self) -> int:
        return sum(day.run_count for day in self.days)

    def count(self, status: RunStatus) -> int:
        return sum(day.runs[status] for day in self.days)

    @property
    def total_tokens(self) -> int:
        return sum(day.total_tokens for day in self.days)

    @property
    def cost_usd(self) -> float:
        return sum(day.cost_usd for day in self.days)


def run_stats(
    *, actor: Actor, session: Session, agent_id: int | None = None, days: int = DEFAULT_DAYS
) -> RunStats:
    """Per-day statistics of the runs the actor may see over the last `days` UTC days (today
    included), of all their agents or of agent `agent_id` (`NotFound` if they may not see it)."""
    agent = None if agent_id is None else visible_agent(agent_id, actor, session=session)
    first = clock.now().astimezone(UTC).date() - timedelta(days=days - 1)
    day = UtcDay(Run.queued_at)
    stmt = scoped(
        select(day, *_aggregates())
        .where(Run.queued_at >= datetime.combine(first, time(), UTC))
        .group_by(day),
        actor,
        Run.agent_id,
    )
    if agent_id is not None:
        stmt = stmt.where(Run.agent_id == agent_id)
    found = {date.fromisoformat(row[0]): _day_stats(row) for row in session.execute(stmt)}
    every_day = (first + timedelta(days=offset) for offset in range(days))
    return RunStats(days=[found.get(d) or _empty(d) for d in every_day], agent=agent)


def _aggregates() -> list[ColumnElement[Any]]:
    by_status = [func.sum(case((Run.status == status.value, 1), else_=0)) for status in RunStatus]
    return [
        *by_status,
        func.avg(Run.duration_ms),
        func.max(Run.duration_ms),
        func.coalesce(func.sum(Run.input_tokens), 0),
        func.coalesce(func.sum(Run.output_tokens), 0),
        func.coalesce(func.sum(Run.total_tokens), 0),
        func.coalesce(func.sum(Run.cost_usd), 0.0),
    ]


def _day_stats(row: Any) -> DayStats:
    day, *counts = row[: len(RunStatus) + 1]
    avg, longest, tokens_in, tokens_out, tokens, cost = row[len(RunStatus) + 1 :]
    return DayStats(
        day=date.fromisoformat(day),
        runs={status: int(n) for status, n in zip(RunStatus, counts, strict=True)},
        avg_duration_ms=None if avg is None else float(avg),
        max_duration_ms=None if longest is None else int(longest),
        input_tokens=int(tokens_in),
        output_tokens=int(tokens_out),
        total_tokens=int(tokens),
        cost_usd=float(cost),
    )


def _empty(day: date) -> DayStats:
    return DayStats(
        day=day,
        runs=dict.fromkeys(RunStatus, 0),
        avg_duration_ms=None,
        max_duration_ms=None,
        input_tokens=0,
        output_tokens=0,
        total_tokens=0,
        cost_usd=0.0,
    )
