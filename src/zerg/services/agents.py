"""Agents: create, read, update, delete, each as an actor who sees only the agents they may."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zerg import clock
from zerg.agents.models import base_url_refusal
from zerg.errors import InvalidInput, NotFound
from zerg.events import EventType
from zerg.events.log import record_in_session
from zerg.models import Agent
from zerg.scheduler.cron import CronError, next_fire_time, next_fire_times, shortest_gap
from zerg.schemas.agents import AgentCreate, AgentRead, AgentUpdate
from zerg.services.mcp_tools import check_stdio_servers
from zerg.services.ownership import owner_of_new, owns, visible_agent
from zerg.services.pagination import PageResult, paginate
from zerg.services.signing import new_whsec
from zerg.services.users import Actor
from zerg.settings import Settings


def _refresh_next_run(agent: Agent) -> None:
    """Keep `next_run_at` in step with the schedule (None when the agent does not fire)."""
    if agent.schedule and agent.run_on_schedule:
        agent.next_run_at = next_fire_time(agent.schedule, agent.timezone, clock.now())
    else:
        agent.next_run_at = None


def _ensure_notify_secret(agent: Agent) -> None:
    if agent.notify_url and not agent.notify_secret:
        agent.notify_secret = new_whsec()


def _check_model_config(model: str, config: dict[str, Any], settings: Settings) -> None:
    """The config checks that depend on the server's settings (the schema checks the rest)."""
    refusal = base_url_refusal(model, config.get("base_url"), settings)
    if refusal is not None:
        raise InvalidInput(refusal, code="base_url_not_allowed")
    max_steps = config.get("max_steps")
    if isinstance(max_steps, int) and max_steps > settings.max_agent_steps:
        raise InvalidInput(
            f"config.max_steps {max_steps} is more than this server allows per run "
            f"({settings.max_agent_steps}); lower it, or raise ZERG_MAX_AGENT_STEPS",
            code="max_steps_too_high",
        )


def check_schedule(schedule: str, timezone: str, settings: Settings) -> None:
    """Refuse a schedule that never fires, or fires more often than the server allows."""
    try:
        gap = shortest_gap(schedule, timezone, clock.now())
    except CronError as exc:
        raise InvalidInput(
            f"schedule {exc}, so it would never run the agent", code="schedule_never_fires"
        ) from None
    limit = settings.min_schedule_interval_s
    if gap is not None and gap.total_seconds() < limit:
        raise InvalidInput(
            f"schedule '{schedule}' fires {gap.total_seconds():g} s apart, more often than "
            f"ZERG_MIN_SCHEDULE_INTERVAL_S ({limit} s) allows; choose a sparser schedule, or "
            "lower ZERG_MIN_SCHEDULE_INTERVAL_S",
            code="schedule_too_frequent",
        )


def create_agent(data: AgentCreate, *, actor: Actor, session: Session, settings: Settings) -> Agent:
    """A new agent, owned by the actor."""
    _check_model_config(data.model, data.config, settings)
    check_stdio_servers(data.config, None, actor=actor, settings=settings)
    if data.schedule is not None:
        check_schedule(data.schedule, data.timezone, settings)
    agent = Agent(**data.model_dump(), owner_id=owner_of_new(actor))
    _refresh_next_run(agent)
    _ensure_notify_secret(agent)
    session.add(agent)
    session.flush()
    _record(session, EventType.AGENT_CREATED, agent)
    return agent


def get_agent(agent_id: int, *, actor: Actor, session: Session) -> Agent:
    """The agent; `NotFound` when it is missing or another user's (the same answer)."""
    return visible_agent(agent_id, actor, session=session)


def list_agents(
    *,
    actor: Actor,
    session: Session,
    owner_id: int | None = None,
    limit: int,
    after: str | None,
) -> PageResult[Agent]:
    """The agents the actor may see, oldest first; `owner_id` keeps one owner's (for a
    non-admin it can only narrow their own list, so another user's id gives an empty page)."""
    stmt = select(Agent).where(owns(actor))
    if owner_id is not None:
        stmt = stmt.where(Agent.owner_id == owner_id)
    return paginate(session, stmt, Agent.id, limit=limit, after=after)


def agent_names(agent_ids: Iterable[int], *, actor: Actor, session: Session) -> dict[int, str]:
    """The names of those agents the actor may see, by id (for lists of their runs and threads)."""
    ids = set(agent_ids)
    if not ids:
        return {}
    rows = session.execute(select(Agent.id, Agent.name).where(owns(actor), Agent.id.in_(ids)))
    return {agent_id: name for agent_id, name in rows}


def update_agent(
    agent_id: int, data: AgentUpdate, *, actor: Actor, session: Session, settings: Settings
) -> Agent:
    agent = get_agent(agent_id, actor=actor, session=session)
    changes = data.model_dump(exclude_unset=True)
    if changes.keys() & {"model", "config"}:
        model = changes.get("model", agent.model)
        _check_model_config(model, changes.get("config", agent.config or {}), settings)
    if "config" in changes:
        check_stdio_servers(changes["config"], agent.config, actor=actor, settings=settings)
    schedule = changes.get("schedule", agent.schedule)
    # A stored schedule is checked again when it would fire anew, not when the agent is
    # paused: pausing must work even for one stored before these checks existed.
    if schedule is not None and (
        changes.keys() & {"schedule", "timezone"} or changes.get("run_on_schedule") is True
    ):
        check_schedule(schedule, changes.get("timezone", agent.timezone), settings)
    for field, value in changes.items():
        setattr(agent, field, value)
    if changes.keys() & {"schedule", "timezone", "run_on_schedule"}:
        _refresh_next_run(agent)
    _ensure_notify_secret(agent)
    session.flush()
    _record(session, EventType.AGENT_UPDATED, agent)
    return agent


def upcoming_fires(agent_id: int, count: int, *, actor: Actor, session: Session) -> list[datetime]:
    """The agent's next `count` fire times, for the editor: empty without a schedule, or
    when its stored schedule cannot fire."""
    agent = get_agent(agent_id, actor=actor, session=session)
    if not agent.schedule:
        return []
    try:
        return next_fire_times(agent.schedule, agent.timezone, clock.now(), count)
    except CronError:
        return []


def notify_secret(agent_id: int, *, actor: Actor, session: Session) -> str:
    """The secret that signs the agent's run notifications."""
    agent = get_agent(agent_id, actor=actor, session=session)
    if not agent.notify_secret:
        raise NotFound(
            f"agent {agent_id} has no notify_url, so no notification secret; set notify_url first",
            code="no_notify_url",
        )
    return agent.notify_secret


def delete_agent(agent_id: int, *, actor: Actor, session: Session) -> None:
    """Delete an agent; the database cascades to its threads, messages, runs and triggers."""
    agent = get_agent(agent_id, actor=actor, session=session)
    owner_id = agent.owner_id
    session.delete(agent)
    session.flush()
    record_in_session(
        session, EventType.AGENT_DELETED, {"id": agent_id}, owner_id=owner_id, agent_id=agent_id
    )


def _record(session: Session, type: EventType, agent: Agent) -> None:
    """The agent as it now stands, published when the session commits."""
    data = AgentRead.model_validate(agent).model_dump(mode="json")
    record_in_session(session, type, data, owner_id=agent.owner_id, agent_id=agent.id)
