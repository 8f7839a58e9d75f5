"""The one settings object: every knob Zerg reads, from `ZERG_*` environment variables."""

import socket
from ipaddress import ip_network
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from zerg.net import is_loopback_host


def _default_data_dir() -> Path:
    return Path.home() / ".zerg"


class Settings(BaseSettings):
    """Zerg's configuration. Created once in an entry point and passed down, never read globally."""

    model_config = SettingsConfigDict(env_prefix="ZERG_", extra="ignore", populate_by_name=True)

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
    server_url: str | None = Field(
        default=None,
        description="URL of a running `zerg serve` that CLI commands such as `zerg agents run` "
        "talk to. Unset: http://HOST:PORT from the settings above.",
    )
    worker_concurrency: int = Field(
        default=32,
        ge=1,
        description="How many queued runs (agents with concurrency: queue) one process "
        "executes at once, across agents.",
    )
    execute_runs: bool = Field(
        default=True,
        description="Whether `zerg serve` executes runs itself (embedded mode). false: an API "
        "replica that records and enqueues runs for `zerg worker` processes (distributed mode, "
        "PostgreSQL only); `zerg serve --no-execute` sets it.",
    )
    executor_id: str | None = Field(
        default=None,
        description="Stable id of a `zerg worker` (`--id`): its runs are recorded under it, so "
        "a restarted worker resumes them. Unset: `worker-<hostname>`; set a distinct one for "
        "each worker on the same host.",
    )
    heartbeat_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="How often a worker records its heartbeat and looks for dead workers.",
    )
    worker_dead_after_s: float = Field(
        default=20.0,
        gt=0,
        description="A worker whose heartbeat is older than this is dead: another worker "
        "takes over its runs.",
    )
    http_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDR networks that the http_get tool and run "
        "notifications may reach although they are not public (e.g. 10.1.2.0/24 for an "
        "internal service). Everything else non-public stays refused.",
    )
    mcp_stdio: Literal["admins", "all", "off"] = Field(
        default="admins",
        description="Who may give agents stdio MCP servers, commands that run on this server's "
        "machine: `admins` (and the local owner of a Zerg without users), `all` users, or "
        "`off` (nobody; runs of agents that have one fail).",
    )
    scheduler_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often a process that executes runs looks for due cron fires.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level of every Zerg logger."
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="How log lines look on stderr: `json` (one JSON object per line), `text` "
        "(for people), or `auto`: text on a terminal, JSON lines otherwise.",
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve GET /metrics without authentication in auth mode (for a scraper "
        "on a trusted network); otherwise it needs an admin's token or ZERG_METRICS_TOKEN.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="A bearer token that reads GET /metrics only (for a Prometheus scraper), "
        "on `zerg serve` and on a `zerg worker`'s metrics port.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port on which `zerg worker` serves its own GET /metrics (event-loop lag, "
        "schedule fires); unset: none. `zerg serve` serves /metrics on its own port.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface a `zerg worker`'s metrics port listens on; another than "
        "loopback needs ZERG_METRICS_TOKEN or ZERG_METRICS_PUBLIC.",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=5000,
        ge=0,
        description="How long a SQLite writer waits for the write lock before failing.",
    )

    auth: Literal["auto", "required"] = Field(
        default="auto",
        description="`auto`: local mode (loopback only, no tokens) while no user exists, auth "
        "mode (every request needs an API token) from the first user on. `required`: auth "
        "mode even before the first user exists.",
    )
    insecure_no_auth: bool = Field(
        default=False,
        description="Serve a Zerg without users to any host, with no authentication "
        "(`zerg serve --insecure-no-auth`): everyone who can reach the port owns everything.",
    )
    token: SecretStr | None = Field(
        default=None,
        description="API token that `zerg` commands talking to the server send "
        "(`Authorization: Bearer`); needed once the server has users.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body the API accepts, in bytes; larger ones are refused "
        "with 413 before they are read. Webhook deliveries have their own 256 KiB limit.",
    )
    model_base_urls: str = Field(
        default="",
        description="Comma-separated base URLs an agent's config.base_url may name (e.g. "
        "http://localhost:11434/v1 for Ollama). The server's provider keys go only to the "
        "provider's own endpoint, OPENAI_BASE_URL, or these; any other base_url is refused.",
    )
    min_schedule_interval_s: int = Field(
        default=60,
        ge=1,
        description="Shortest time allowed between two fires of an agent's cron schedule.",
    )
    max_agent_steps: int = Field(
        default=200,
        ge=1,
        description="Ceiling of an agent's config.max_steps (model and tool calls in one run).",
    )
    max_queued_runs: int = Field(
        default=100,
        ge=1,
        description="How many runs one agent may have waiting (concurrency: queue); a trigger "
        "beyond that is refused with 429 queue_full.",
    )
    event_buffer: int = Field(
        default=1000,
        ge=10,
        le=1_000_000,
        description="How many events a WebSocket or event stream client may fall behind "
        "before it is dropped (it reconnects and resumes).",
    )
    event_retention_days: float = Field(
        default=7.0,
        gt=0,
        description="How long stored events are kept for streams to resume from.",
    )
    heartbeat_s: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="How often WebSocket pings and event-stream heartbeats go out; a WebSocket "
        "peer that does not answer a ping within as long again is disconnected. An open "
        "WebSocket's sign-in or token is checked again as often.",
    )
    session_days: float = Field(
        default=14.0,
        gt=0,
        le=366,
        description="How long a dashboard sign-in lasts.",
    )
    reconcile_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="How often a process that executes runs looks for unfinished runs that "
        "no engine workflow will move, and starts or ends them.",
    )

    local_models_dir: Path | None = Field(
        default=None,
        description="Directory of the GGUF files `local:NAME` models name (NAME.gguf). Unset: "
        "the folder models in data_dir.",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "ZERG_OPENAI_API_KEY"),
        description="API key for `openai:` models (OPENAI_API_KEY).",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "ZERG_OPENAI_BASE_URL"),
        description="Base URL of an OpenAI-compatible server (OPENAI_BASE_URL); "
        "an agent's config.base_url wins over it.",
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_API_KEY", "ZERG_ANTHROPIC_API_KEY"),
        description="API key for `anthropic:` models (ANTHROPIC_API_KEY).",
    )

    @field_validator("http_allowed_networks")
    @classmethod
    def _check_networks(cls, value: str) -> str:
        for network in (part.strip() for part in value.split(",")):
            if network:
                try:
                    ip_network(network)
                except ValueError as exc:
                    raise ValueError(f"{network!r} is not a CIDR network: {exc}") from None
        return value

    @field_validator("model_base_urls")
    @classmethod
    def _check_base_urls(cls, value: str) -> str:
        for url in (part.strip() for part in value.split(",")):
            if url and not url.lower().startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an absolute http:// or https:// URL")
        return value

    @field_validator("metrics_host")
    @classmethod
    def _check_metrics_host(cls, value: str, info: ValidationInfo) -> str:
        fields = info.data
        guarded = fields.get("metrics_token") is not None or fields.get("metrics_public")
        if fields.get("metrics_port") is not None and not guarded and not is_loopback_host(value):
            raise ValueError(
                f"{value} would serve a worker's metrics to the network without "
                "authentication: set ZERG_METRICS_TOKEN (scrapers send it as a Bearer token), "
                "or ZERG_METRICS_PUBLIC=true on a trusted network"
            )
        return value

    @property
    def allowed_model_base_urls(self) -> tuple[str, ...]:
        return tuple(u.strip() for u in self.model_base_urls.split(",") if u.strip())

    @property
    def allowed_networks(self) -> tuple[str, ...]:
        return tuple(n.strip() for n in self.http_allowed_networks.split(",") if n.strip())

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'zerg.db'}"

    @property
    def resolved_local_models_dir(self) -> Path:
        return self.local_models_dir or self.data_dir / "models"

    @property
    def resolved_server_url(self) -> str:
        if self.server_url:
            return self.server_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def resolved_executor_id(self) -> str:
        return self.executor_id or f"worker-{socket.gethostname()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")
