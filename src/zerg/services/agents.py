"""Agents: create, read, update, delete."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from zerg.errors import NotFound
from zerg.models import Agent
from zerg.schemas.agents import AgentCreate, AgentUpdate
from zerg.services.pagination import PageResult, paginate


def create_agent(data: AgentCreate, *, session: Session) -> Agent:
    agent = Agent(**data.model_dump())
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
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(agent, field, value)
    session.flush()
    return agent


def delete_agent(agent_id: int, *, session: Session) -> None:
    """Delete an agent; the database cascades to its threads, messages, runs and triggers."""
    agent = get_agent(agent_id, session=session)
    session.delete(agent)
    session.flush()
