"""/api/me"""

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from zerg.services.users import Actor

router = APIRouter(tags=["users"])


class Me(BaseModel):
    """Who the request acts as."""

    user_id: int | None
    name: str
    is_admin: bool
    mode: Literal["local", "token"]


@router.get("/me")
async def me(request: Request) -> Me:
    """Who this request acts as: a token's user, or the local owner (local mode)."""
    actor: Actor = request.state.actor
    mode: Literal["local", "token"] = "local" if actor.user_id is None else "token"
    return Me(user_id=actor.user_id, name=actor.name, is_admin=actor.is_admin, mode=mode)
