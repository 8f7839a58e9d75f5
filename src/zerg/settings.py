"""The one settings object: every knob Zerg reads, from `ZERG_*` environment variables."""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".zerg"


class Settings(BaseSettings):
    """Zerg's configuration. Created once in an entry point and passed down, never read globally."""

    model_config = SettingsConfigDict(env_prefix="ZERG_", extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory for the embedded SQLite database and other local state; "
        "created on start.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the database. Unset: a SQLite file in data_dir. "
        "For PostgreSQL use postgresql+psycopg://user:password@host/dbname.",
    )
    host: str = Field(default="127.0.0.1", description="Interface `zerg serve` listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `zerg serve` listens on.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level of every Zerg logger."
    )
    sqlite_busy_timeout_ms: int = Field(
        default=5000,
        ge=0,
        description="How long a SQLite writer waits for the write lock before failing.",
    )

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'zerg.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")
