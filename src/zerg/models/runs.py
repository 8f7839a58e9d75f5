"""The `runs` table: one row per task run, its status moved only by the run state machine."""

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Table, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from zerg import clock
from zerg.db.types import JSONType, UTCDateTime
from zerg.models.base import NEVER_REUSE_IDS, Base


def new_workflow_id() -> str:
    """A run's identity in the run engine: random, so no deletion or reset can make two runs
    share one."""
    return f"run-{uuid.uuid4().hex}"


# A thread has at most one chat turn queued or running: a second one fails to insert.
OPEN_CHAT_TURN = text("\"trigger\" = 'chat' AND status IN ('queued', 'running')")


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # An agent's runs in a status (is another running? how many wait?) without reading
        # the agent's whole history.
        Index("ix_runs_agent_id_status", "agent_id", "status"),
        # An agent's usage of one day (its budget) sums only that day's runs.
        Index("ix_runs_agent_id_queued_at", "agent_id", "queued_at"),
        # An agent's runs newest first, its newest in one lookup (the dashboard's last run).
        Index("ix_runs_agent_id_id", "agent_id", "id"),
        Index(
            "uq_runs_open_chat_turn",
            "thread_id",
            unique=True,
            sqlite_where=OPEN_CHAT_TURN,
            postgresql_where=OPEN_CHAT_TURN,
        ),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    thread_id: Mapped[int | None] = mapped_column(
        ForeignKey("threads.id", ondelete="SET NULL"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    # A stable, machine-readable reason for some failures (`budget_exceeded`); None otherwise.
    error_code: Mapped[str | None] = mapped_column(String(64))
    # What the trigger handed the run (a webhook's JSON payload), shown to the agent.
    input: Mapped[Any] = mapped_column(JSONType, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # The agent's single slot, held while a run of a `concurrency: reject` agent is queued or
    # running: the unique constraint makes a second simultaneous trigger fail atomically.
    slot_agent_id: Mapped[int | None] = mapped_column(unique=True)
    # The executor (`zerg worker --id`, or `local` for `zerg serve`) that last began executing
    # the run: after a takeover, the worker that finished it.
    executor_id: Mapped[str | None] = mapped_column(String(128))
    # The run's identity in the run engine (`run-<uuid>`): unique whatever was deleted or reset,
    # so a run can never be mistaken for another run's workflow.
    workflow_id: Mapped[str] = mapped_column(String(64), unique=True, default=new_workflow_id)
    # SHA-256 of a webhook delivery's body: a replay of the same signed body is recognised even
    # under a new delivery id.
    delivery_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    # The API token that started the run (trigger `api`), if one did.
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="SET NULL"), index=True
    )
    # A chat turn's user message: the turn answers it, and its usage counts from there.
    message_id: Mapped[int | None] = mapped_column(Integer)


runs_table = cast(Table, Run.__table__)
