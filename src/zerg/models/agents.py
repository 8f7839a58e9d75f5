"""The `agents` table."""

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from zerg.db.types import JSONType, UTCDateTime
from zerg.models.base import NEVER_REUSE_IDS, Base, Timestamped


class Agent(Timestamped, Base):
    __tablename__ = "agents"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    # The user who owns the agent and everything it made; None: the built-in local owner of a
    # Zerg that has no users.
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    system_instructions: Mapped[str] = mapped_column(Text, default="")
    task_instructions: Mapped[str | None] = mapped_column(Text)
    tools: Mapped[list[str]] = mapped_column(JSONType, default=list)
    schedule: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    run_on_schedule: Mapped[bool] = mapped_column(Boolean, default=True)
    # What to do with fires missed while nothing was running: one catch-up run, or none.
    missed_fires: Mapped[str] = mapped_column(String(16), default="run_once")
    concurrency: Mapped[str] = mapped_column(String(16), default="reject")
    timeout_s: Mapped[int] = mapped_column(Integer, default=600)
    status: Mapped[str] = mapped_column(String(16), default="idle")
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Where a finished run's summary is POSTed, signed per Standard Webhooks with notify_secret.
    notify_url: Mapped[str | None] = mapped_column(String(2000))
    notify_secret: Mapped[str | None] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Budgets (None: no limit): a run stops at the next model call once it, or the agent's runs
    # queued this UTC day, used this many tokens or dollars.
    max_run_tokens: Mapped[int | None] = mapped_column(Integer)
    max_run_cost_usd: Mapped[float | None] = mapped_column(Float)
    max_day_tokens: Mapped[int | None] = mapped_column(Integer)
    max_day_cost_usd: Mapped[float | None] = mapped_column(Float)


agents_table = cast(Table, Agent.__table__)
