"""The `events` table: the event log, every event's id and what it said.

An event is written in the same transaction as the change it describes, so its id exists once
that change is committed, and a stream can be replayed from any id after a reconnect or a
restart. Rows are not tied to their objects by foreign keys: `agent_deleted` outlives its
agent, and old events are pruned by age (`ZERG_EVENT_RETENTION_DAYS`).
"""

from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from zerg import clock
from zerg.db.types import JSONType, UTCDateTime
from zerg.models.base import NEVER_REUSE_IDS, Base


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_run_id_id", "run_id", "id"),
        NEVER_REUSE_IDS,
    )

    # BIGINT on PostgreSQL (many events per run); SQLite's rowid is 64-bit already.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[int | None] = mapped_column(Integer)
    agent_id: Mapped[int | None] = mapped_column(Integer)
    thread_id: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now, index=True)


events_table = cast(Table, EventRow.__table__)
