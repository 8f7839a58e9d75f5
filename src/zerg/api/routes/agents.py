"""/api/agents"""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from zerg.api.deps import DEFAULT_PAGE_LIMIT, After, Limit, SessionDep, SettingsDep
from zerg.schemas.agents import AgentCreate, AgentRead, AgentSchedule, AgentUpdate
from zerg.schemas.common import Id, Page
from zerg.services import agents as service

router = APIRouter(prefix="/agents", tags=["agents"])


@router.post("", status_code=201)
def create_agent(data: AgentCreate, session: SessionDep, settings: SettingsDep) -> AgentRead:
    """Create an agent."""
    agent = service.create_agent(data, session=session, settings=settings)
    session.commit()
    return AgentRead.model_validate(agent)


@router.get("")
def list_agents(
    session: SessionDep, limit: Limit = DEFAULT_PAGE_LIMIT, after: After = None
) -> Page[AgentRead]:
    """List agents, oldest first."""
    page = service.list_agents(session=session, limit=limit, after=after)
    items = [AgentRead.model_validate(agent) for agent in page.items]
    return Page(items=items, next_cursor=page.next_cursor)


@router.get("/{agent_id}")
def get_agent(agent_id: Id, session: SessionDep) -> AgentRead:
    """Read one agent."""
    return AgentRead.model_validate(service.get_agent(agent_id, session=session))


@router.get("/{agent_id}/schedule")
def get_schedule(
    agent_id: Id,
    session: SessionDep,
    count: Annotated[int, Query(ge=1, le=100, description="How many fire times.")] = 5,
) -> AgentSchedule:
    """The agent's schedule and its next fire times, in UTC (empty without a schedule)."""
    agent = service.get_agent(agent_id, session=session)
    fires = service.upcoming_fires(agent_id, count, session=session)
    return AgentSchedule(
        schedule=agent.schedule,
        timezone=agent.timezone,
        run_on_schedule=agent.run_on_schedule,
        fire_times=fires,
    )


@router.get("/{agent_id}/notify-secret")
def get_notify_secret(agent_id: Id, session: SessionDep) -> dict[str, str]:
    """The secret that signs this agent's run notifications (Standard Webhooks)."""
    return {"secret": service.notify_secret(agent_id, session=session)}


@router.patch("/{agent_id}")
def update_agent(
    agent_id: Id, data: AgentUpdate, session: SessionDep, settings: SettingsDep
) -> AgentRead:
    """Change some fields of an agent."""
    agent = service.update_agent(agent_id, data, session=session, settings=settings)
    session.commit()
    return AgentRead.model_validate(agent)


@router.delete("/{agent_id}", status_code=204)
def delete_agent(agent_id: Id, session: SessionDep) -> Response:
    """Delete an agent with its threads, messages, runs and triggers."""
    service.delete_agent(agent_id, session=session)
    session.commit()
    return Response(status_code=204)
