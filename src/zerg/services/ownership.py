"""Owner isolation in one place: which agents an actor may see, and so which threads, messages,
runs and triggers (they belong to their agent's owner).

Another user's object is reported exactly like a missing one (404 `not_found`), so an id tells
nobody whether it exists. Admins (and the local owner of a Zerg without users) see everything.
"""

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session

from zerg.errors import NotFound
from zerg.models import Agent
from zerg.services.users import Actor

S = TypeVar("S", bound=Select[Any])


def owns(actor: Actor) -> ColumnElement[bool]:
    """The condition on `Agent` rows this actor may see."""
    if actor.is_admin:
        return true()
    return Agent.owner_id == actor.user_id


def scoped(stmt: S, actor: Actor, agent_id: ColumnElement[int] | Any) -> S:
    """`stmt` limited to rows whose agent (`agent_id`, a column of the statement) the actor
    may see."""
    if actor.is_admin:
        return stmt
    return stmt.where(agent_id.in_(select(Agent.id).where(owns(actor))))


def visible_agent(agent_id: int, actor: Actor, *, session: Session) -> Agent:
    """Agent `agent_id` if the actor may see it; `NotFound` (the same as for a missing one)
    otherwise."""
    agent = session.get(Agent, agent_id)
    if agent is None or not may_see(actor, agent.owner_id):
        raise NotFound(f"agent {agent_id} does not exist")
    return agent


def may_see(actor: Actor, owner_id: int | None) -> bool:
    return actor.is_admin or (owner_id is not None and owner_id == actor.user_id)


def owner_of_new(actor: Actor) -> int | None:
    """The owner of an agent the actor creates: themselves (None for the local owner)."""
    return actor.user_id
