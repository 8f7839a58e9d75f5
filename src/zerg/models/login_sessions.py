"""The `login_sessions` table: the dashboard's signed-in browsers."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from zerg import clock
from zerg.db.types import UTCDateTime
from zerg.models.base import NEVER_REUSE_IDS, Base


class LoginSession(Base):
    """A browser's session: the cookie holds a random token, only its SHA-256 is stored, so
    signing out (or disabling the user) ends it at once."""

    __tablename__ = "login_sessions"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
