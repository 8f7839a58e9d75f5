"""The `triggers` table: inbound webhooks that start task runs."""

import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from zerg import clock
from zerg.db.types import UTCDateTime
from zerg.models.base import NEVER_REUSE_IDS, Base


def new_public_id() -> str:
    """The random id in a trigger's delivery URL: no one finds a trigger by counting ids."""
    return secrets.token_urlsafe(24)


class Trigger(Base):
    __tablename__ = "triggers"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    # Deliveries go to /hooks/{public_id}; the sequential `id` names it in the management API.
    public_id: Mapped[str] = mapped_column(String(64), unique=True, default=new_public_id)
    scheme: Mapped[str] = mapped_column(String(16), default="standard")
    secret: Mapped[str] = mapped_column(String(200))
    # After a rotation the previous secret keeps verifying deliveries until it expires.
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
