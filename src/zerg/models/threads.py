"""The `threads` and `messages` tables."""

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Boolean, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from zerg import clock
from zerg.db.types import JSONType, UTCDateTime
from zerg.models.base import NEVER_REUSE_IDS, Base, Timestamped


class Thread(Timestamped, Base):
    __tablename__ = "threads"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    thread_type: Mapped[str] = mapped_column(String(16), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class Message(Base):
    """One message of a thread; `id` order is the conversation order."""

    __tablename__ = "messages"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    tool_call_id: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200))
    processed: Mapped[bool] = mapped_column(Boolean, default=True)
    # `metadata` is reserved on declarative classes, hence the attribute name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)


threads_table = cast(Table, Thread.__table__)


messages_table = cast(Table, Message.__table__)
