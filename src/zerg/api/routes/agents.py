"""/api/agents"""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from zerg.api.deps import DEFAULT_PAGE_LIMIT, ActorDep, After, Limit, SessionDep, SettingsDep
from zerg.schemas.agents import AgentCreate, AgentRead, AgentSchedule, AgentUpdate
from zerg.schemas.budgets import AgentUsage
from zerg.schemas.common import Id, Page
from zerg.services import agents as service
from zerg.services import budgets

router = APIRouter(prefix="/agents", tags=["agents"])
OwnerId = Annotated[
    Id | None, Query(description="Only this user's agents (another user's: none unless admin).")
]


@router.post("", status_code=201)
def create_agent(
    data: AgentCreate, actor: ActorDep, session: SessionDep, settings: SettingsDep
) -> AgentRead:
    """Create an agent, owned by the caller."""
    agent = service.create_agent(data, actor=actor, session=session, settings=settings)
    session.commit()
    return AgentRead.model_validate(agent)


@router.get("")
def list_agents(
    actor: ActorDep,
    session: SessionDep,
    owner_id: OwnerId = None,
    limit: Limit = DEFAULT_PAGE_LIMIT,
    after: After = None,
) -> Page[AgentRead]:
    """List the agents the caller may see, oldest first."""
    page = service.list_agents(
        actor=actor, session=session, owner_id=owner_id, limit=limit, after=after
    )
    items = [AgentRead.model_validate(agent) for agent in page.items]
    return Page(items=items, next_cursor=page.next_cursor)


@router.get("/{agent_id}")
def get_agent(agent_id: Id, actor: ActorDep, session: SessionDep) -> AgentRead:
    """Read one agent."""
    return AgentRead.model_validate(service.get_agent(agent_id, actor=actor, session=session))


@router.get("/{agent_id}/schedule")
def get_schedule(
    agent_id: Id,
    actor: ActorDep,
    session: SessionDep,
    count: Annotated[int, Query(ge=1, le=100, description="How many fire times.")] = 5,
) -> AgentSchedule:
    """The agent's schedule and its next fire times, in UTC (empty without a schedule)."""
    agent = service.get_agent(agent_id, actor=actor, session=session)
    fires = service.upcoming_fires(agent_id, count, actor=actor, session=session)
    return AgentSchedule(
        schedule=agent.schedule,
        timezone=agent.timezone,
        run_on_schedule=agent.run_on_schedule,
        fire_times=fires,
    )


@router.get("/{agent_id}/usage")
def get_usage(agent_id: Id, actor: ActorDep, session: SessionDep) -> AgentUsage:
    """What the agent's runs used this UTC day, against its daily budget."""
    return budgets.usage_today(agent_id, actor=actor, session=session)


@router.get("/{agent_id}/notify-secret")
def get_notify_secret(agent_id: Id, actor: ActorDep, session: SessionDep) -> dict[str, str]:
    """The secret that signs this agent's run notifications (Standard Webhooks)."""
    return {"secret": service.notify_secret(agent_id, actor=actor, session=session)}


@router.patch("/{agent_id}")
def update_agent(
    agent_id: Id, data: AgentUpdate, actor: ActorDep, session: SessionDep, settings: SettingsDep
) -> AgentRead:
    """Change some fields of an agent."""
    agent = service.update_agent(agent_id, data, actor=actor, session=session, settings=settings)
    session.commit()
    return AgentRead.model_validate(agent)


@router.delete("/{agent_id}", status_code=204)
def delete_agent(agent_id: Id, actor: ActorDep, session: SessionDep) -> Response:
    """Delete an agent with its threads, messages, runs and triggers."""
    service.delete_agent(agent_id, actor=actor, session=session)
    session.commit()
    return Response(status_code=204)
