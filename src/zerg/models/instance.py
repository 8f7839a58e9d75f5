"""The `instance` table: one row naming this Zerg database, so its companions can tell it apart."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from zerg import clock
from zerg.db.types import UTCDateTime
from zerg.models.base import Base


class Instance(Base):
    __tablename__ = "instance"

    # A random id made when the database is created. The embedded run engine's own SQLite file
    # records it too: an engine file that names another id belongs to another (deleted) database.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
