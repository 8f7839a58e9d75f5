"""Agents: create, read, update, delete."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from zerg import clock
from zerg.errors import NotFound
from zerg.models import Agent
from zerg.scheduler.cron import next_fire_time, next_fire_times
from zerg.schemas.agents import AgentCreate, AgentUpdate
from zerg.services.pagination import PageResult, paginate
from zerg.services.signing import new_whsec


def _refresh_next_run(agent: Agent) -> None:
    """Keep `next_run_at` in step with the schedule (None when the agent does not fire)."""
    if agent.schedule and agent.run_on_schedule:
        agent.next_run_at = next_fire_time(agent.schedule, agent.timezone, clock.now())
    else:
        agent.next_run_at = None


def _ensure_notify_secret(agent: Agent) -> None:
    if agent.notify_url and not agent.notify_secret:
        agent.notify_secret = new_whsec()


def create_agent(data: AgentCreate, *, session: Session) -> Agent:
    agent = Agent(**data.model_dump())
    _refresh_next_run(agent)
    _ensure_notify_secret(agent)
    session.add(agent)
    session.flush()
    return agent


def get_agent(agent_id: int, *, session: Session) -> Agent:
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id} does not exist")
    return agent


def list_agents(*, session: Session, limit: int, after: str | None) -> PageResult[Agent]:
    return paginate(session, select(Agent), Agent.id, limit=limit, after=after)


def update_agent(agent_id: int, data: AgentUpdate, *, session: Session) -> Agent:
    agent = get_agent(agent_id, session=session)
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(agent, field, value)
    if changes.keys() & {"schedule", "timezone", "run_on_schedule"}:
        _refresh_next_run(agent)
    _ensure_notify_secret(agent)
    session.flush()
    return agent


def upcoming_fires(agent_id: int, count: int, *, session: Session) -> list[datetime]:
    """The agent's next `count` fire times (empty without a schedule), for the editor."""
    agent = get_agent(agent_id, session=session)
    if not agent.schedule:
        return []
    return next_fire_times(agent.schedule, agent.timezone, clock.now(), count)


def notify_secret(agent_id: int, *, session: Session) -> str:
    """The secret that signs the agent's run notifications."""
    agent = get_agent(agent_id, session=session)
    if not agent.notify_secret:
        raise NotFound(
            f"agent {agent_id} has no notify_url, so no notification secret; set notify_url first",
            code="no_notify_url",
        )
    return agent.notify_secret


def delete_agent(agent_id: int, *, session: Session) -> None:
    """Delete an agent; the database cascades to its threads, messages, runs and triggers."""
    agent = get_agent(agent_id, session=session)
    session.delete(agent)
    session.flush()
