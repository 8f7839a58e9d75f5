"""The `workers` table: one row per `zerg worker` executor id, with its heartbeat."""

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from zerg.db.types import UTCDateTime
from zerg.models.base import Base


class Worker(Base):
    __tablename__ = "workers"

    # The worker's stable DBOS executor id: its runs are recorded under it.
    executor_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # `alive` while it beats; `stopped` after a clean exit; `reaped` once another worker has
    # taken over its runs. Only a compare-and-set UPDATE moves it to `reaped`.
    status: Mapped[str] = mapped_column(String(16))
    # Changes at every start, so a stale process can tell it has been replaced.
    instance: Mapped[str] = mapped_column(String(32))
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reaped_by: Mapped[str | None] = mapped_column(String(128))
    reaped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
