"""Per-agent budgets: what an agent's runs used this UTC day, and the checks against its limits.

Everything is read from the database (the runs' usage columns; a budgeted run's are kept
current message by message), so the limits hold across processes and workers. A model call
whose price is unknown adds no cost: only token limits can stop it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.orm import Session

from zerg import clock
from zerg.errors import BudgetExceeded
from zerg.models import runs_table
from zerg.schemas.budgets import AgentUsage
from zerg.services.ownership import visible_agent
from zerg.services.users import Actor

_runs = runs_table.c
_DAY_FILTER = (
    _runs.queued_at >= bindparam("since"),
    _runs.queued_at < bindparam("until"),
)
# Runs by (agent_id, queued_at): the index ix_runs_agent_id_queued_at answers it.
_DAY_USAGE = select(
    func.coalesce(func.sum(_runs.total_tokens), 0), func.coalesce(func.sum(_runs.cost_usd), 0.0)
).where(_runs.agent_id == bindparam("agent_id"), *_DAY_FILTER)
_RUN_USAGE = select(_runs.total_tokens, _runs.cost_usd).where(_runs.id == bindparam("run_id"))


@dataclass(frozen=True)
class Limits:
    """An agent's budget; None is no limit."""

    max_run_tokens: int | None = None
    max_run_cost_usd: float | None = None
    max_day_tokens: int | None = None
    max_day_cost_usd: float | None = None

    @classmethod
    def of(cls, source: Any) -> "Limits":
        """The limits of anything with the agent's budget fields as attributes."""
        return cls(
            source.max_run_tokens,
            source.max_run_cost_usd,
            source.max_day_tokens,
            source.max_day_cost_usd,
        )

    @property
    def per_day(self) -> bool:
        return self.max_day_tokens is not None or self.max_day_cost_usd is not None

    @property
    def any(self) -> bool:
        return self.per_day or self.max_run_tokens is not None or self.max_run_cost_usd is not None


@dataclass(frozen=True)
class Spent:
    tokens: int
    cost_usd: float  # of the calls with a known price


def day_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The UTC day `now` falls in: its midnight, and the next."""
    since = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return since, since + timedelta(days=1)


def spent_today(db: Connection | Session, agent_id: int, now: datetime) -> Spent:
    """What the agent's runs queued on `now`'s UTC day used, running ones included."""
    since, until = day_bounds(now)
    params = {"agent_id": agent_id, "since": since, "until": until}
    tokens, cost = db.execute(_DAY_USAGE, params).one()
    return Spent(int(tokens), float(cost))


def spent_today_by_agent(agent_ids: list[int], *, session: Session) -> dict[int, Spent]:
    """`spent_today` of several agents in one query (agents without runs today are left out)."""
    if not agent_ids:
        return {}
    since, until = day_bounds(clock.now())
    stmt = (
        select(_runs.agent_id, func.sum(_runs.total_tokens), func.sum(_runs.cost_usd))
        .where(_runs.agent_id.in_(agent_ids), _runs.queued_at >= since, _runs.queued_at < until)
        .group_by(_runs.agent_id)
    )
    return {
        agent_id: Spent(int(tokens or 0), float(cost or 0.0))
        for agent_id, tokens, cost in session.execute(stmt)
    }


def spent_agents(agents: Sequence[Any], *, session: Session) -> set[int]:
    """Which of `agents` (rows with their budget fields) have spent their daily budget."""
    every = {agent.id: Limits.of(agent) for agent in agents}
    limits = {agent_id: limit for agent_id, limit in every.items() if limit.per_day}
    spent = spent_today_by_agent(list(limits), session=session)
    return {
        agent_id
        for agent_id, limit in limits.items()
        if day_refusal(agent_id, limit, spent.get(agent_id, Spent(0, 0.0))) is not None
    }


def day_refusal(agent_id: int, limits: Limits, spent: Spent) -> str | None:
    """Why the agent may not start anything more today, or None while it may."""
    if limits.max_day_tokens is not None and spent.tokens >= limits.max_day_tokens:
        used, limit, name = f"{spent.tokens:,} tokens", f"{limits.max_day_tokens:,}", "tokens"
    elif limits.max_day_cost_usd is not None and spent.cost_usd >= limits.max_day_cost_usd:
        used, limit, name = _usd(spent.cost_usd), _usd(limits.max_day_cost_usd), "cost_usd"
    else:
        return None
    return (
        f"agent {agent_id}'s runs used {used} today (UTC), reaching its daily limit of {limit} "
        f"(max_day_{name}); it runs again after midnight UTC, or raise max_day_{name}"
    )


def run_refusal(limits: Limits, tokens: int, cost_usd: float | None) -> str | None:
    """Why a run that used this much may make no further model call, or None."""
    if limits.max_run_tokens is not None and tokens >= limits.max_run_tokens:
        used, limit, name = f"{tokens:,} tokens", f"{limits.max_run_tokens:,}", "tokens"
    elif (
        limits.max_run_cost_usd is not None
        and cost_usd is not None
        and cost_usd >= limits.max_run_cost_usd
    ):
        used, limit, name = _usd(cost_usd), _usd(limits.max_run_cost_usd), "cost_usd"
    else:
        return None
    return (
        f"the run used {used}, reaching its limit of {limit} per run (max_run_{name}); it "
        f"stopped before its next model call. Raise the agent's max_run_{name} to let runs go "
        "further"
    )


def check_day(db: Connection, agent_id: int, limits: Limits) -> None:
    """`BudgetExceeded` when the agent's daily budget is spent (nothing is started then)."""
    if not limits.per_day:
        return
    refusal = day_refusal(agent_id, limits, spent_today(db, agent_id, clock.now()))
    if refusal is not None:
        raise BudgetExceeded(refusal)


def check_run(db: Connection, run_id: int, agent_id: int, limits: Limits) -> None:
    """Before a model call: `BudgetExceeded` when the run, or the agent's runs today (this one
    included), used up a limit."""
    tokens, cost = db.execute(_RUN_USAGE, {"run_id": run_id}).one()
    refusal = run_refusal(limits, int(tokens or 0), cost)
    if refusal is None and limits.per_day:
        refusal = day_refusal(agent_id, limits, spent_today(db, agent_id, clock.now()))
        if refusal is not None:
            refusal += "; the run stopped before its next model call"
    if refusal is not None:
        raise BudgetExceeded(refusal)


def usage_today(agent_id: int, *, actor: Actor, session: Session) -> AgentUsage:
    """The agent's usage this UTC day against its daily limits."""
    agent = visible_agent(agent_id, actor, session=session)
    now = clock.now()
    since, until = day_bounds(now)
    spent = spent_today(session, agent_id, now)
    return AgentUsage(
        agent_id=agent_id,
        day=since.date(),
        since=since,
        until=until,
        tokens=spent.tokens,
        cost_usd=spent.cost_usd,
        max_day_tokens=agent.max_day_tokens,
        max_day_cost_usd=agent.max_day_cost_usd,
        spent=day_refusal(agent_id, Limits.of(agent), spent) is not None,
    )


def _usd(amount: float) -> str:
    """Dollars without float noise: $0.15, $0.000012, $3."""
    return "$" + f"{amount:.6f}".rstrip("0").rstrip(".")
