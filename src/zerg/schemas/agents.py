"""Agent shapes: what a client may send, and what it reads back."""

import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import ErrorDetails

from zerg.agents.catalog import BUILTIN_TOOL_NAMES, MODEL_PROVIDERS
from zerg.schemas.common import storable
from zerg.schemas.mcp import MAX_MCP_SERVERS, parse_mcp_servers


class AgentStatus(StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    ERROR = "error"


Concurrency = Literal["reject", "queue"]
MissedFires = Literal["run_once", "skip"]
READ_ONLY_FIELDS = frozenset(
    {
        "id",
        "owner_id",
        "status",
        "last_run_at",
        "next_run_at",
        "last_error",
        "created_at",
        "updated_at",
    }
)
# Every agent is read back in full by lists and runs: bounded fields keep that cheap and safe.
MAX_INSTRUCTIONS_CHARS = 100_000
MAX_CONFIG_BYTES = 16 * 1024
MAX_CONFIG_DEPTH = 10
MAX_URL_CHARS = 2000

_CRON_NICKNAMES = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
# One value of a cron field: a number (with croniter's L or W), a month or day name, * or ?.
# croniter's R (random) and H (hashed) are left out: every process must compute the same fires.
_CRON_ATOM = re.compile(r"\*|\?|l|\d{1,4}[lw]?|[a-z]{3}")
_CRON_SEPARATORS = re.compile(r"[,/#-]")


def _check_model(value: str) -> str:
    provider, sep, name = value.partition(":")
    if not sep or not name.strip():
        raise ValueError("model must look like 'provider:name', e.g. 'openai:gpt-4o-mini'")
    if provider not in MODEL_PROVIDERS:
        known = ", ".join(MODEL_PROVIDERS)
        raise ValueError(f"unknown model provider '{provider}'; known providers: {known}")
    return value


def _is_standard_cron(value: str) -> bool:
    if value.lower() in _CRON_NICKNAMES:
        return True
    fields = value.lower().split()
    atoms = [atom for field in fields for atom in _CRON_SEPARATORS.split(field)]
    return len(fields) == 5 and all(_CRON_ATOM.fullmatch(atom) for atom in atoms)


def _check_schedule(value: str | None) -> str | None:
    """Standard 5-field cron only: croniter's 6th (seconds) and 7th (year) fields would let a
    schedule fire every second, or only in the past."""
    if value is None:
        return None
    if not _is_standard_cron(value) or not croniter.is_valid(value):
        raise ValueError(
            f"'{value}' is not a valid cron expression: use the standard 5 fields "
            "(minute hour day-of-month month day-of-week, e.g. '0 9 * * 1-5') or one of "
            + ", ".join(_CRON_NICKNAMES)
        )
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    # A key naming a tzdata directory ("America") fails with IsADirectoryError, an OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"'{value}' is not an IANA time zone name (e.g. 'UTC', 'Europe/Paris')"
        ) from None
    return value


def _check_tools(value: list[str]) -> list[str]:
    unknown = [tool for tool in value if tool not in BUILTIN_TOOL_NAMES]
    if unknown:
        known = ", ".join(BUILTIN_TOOL_NAMES)
        raise ValueError(f"unknown tool(s) {', '.join(unknown)}; available tools: {known}")
    return list(dict.fromkeys(value))


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Model = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_check_model)
]
Schedule = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, max_length=200),
    AfterValidator(_check_schedule),
]
Timezone = Annotated[str, AfterValidator(_check_timezone)]


def _check_notify_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise ValueError("notify_url must be an absolute http:// or https:// URL")
    return value


NotifyUrl = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, max_length=2000),
    AfterValidator(_check_notify_url),
]
Tools = Annotated[list[str], AfterValidator(_check_tools)]
TimeoutS = Annotated[int, Field(ge=1, le=86400)]
# Budgets: None is no limit. The bounds keep a typo (a negative, 1e300) from passing silently.
MAX_TOKEN_LIMIT = 1_000_000_000
MAX_COST_LIMIT_USD = 1_000_000.0
TokenLimit = Annotated[
    int | None,
    Field(ge=1, le=MAX_TOKEN_LIMIT, description="Tokens (input + output); null: no limit."),
]
CostLimit = Annotated[
    float | None,
    Field(
        gt=0,
        le=MAX_COST_LIMIT_USD,
        allow_inf_nan=False,
        description="US dollars, from models with a known price; null: no limit.",
    ),
]
BUDGET_FIELDS = ("max_run_tokens", "max_run_cost_usd", "max_day_tokens", "max_day_cost_usd")
Instructions = Annotated[str, StringConstraints(max_length=MAX_INSTRUCTIONS_CHARS)]

_NOT_A_BASE_URL = "must be an http:// or https:// URL with a host, e.g. http://localhost:11434/v1"


def _check_base_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        valid = bool(parts.hostname) and parts.port != 0
    except ValueError:  # a bracketed host that is not IPv6, a port that is not 1-65535
        valid = False
    if not valid:
        raise ValueError(_NOT_A_BASE_URL)
    return value


BaseUrl = Annotated[
    str,
    StringConstraints(max_length=MAX_URL_CHARS, pattern=r"^https?://[^/\s?#]+(/\S*)?$"),
    AfterValidator(_check_base_url),
]


def _check_mcp_servers(value: Any) -> Any:
    if value is not None:
        parse_mcp_servers(value)
    return value


# Any, so that parse_mcp_servers words every refusal (a list instead of an object too). Left
# out of the OpenAPI schema (AgentConfig's description names it): a schema-driven client or
# fuzzer must not make up commands for the server to run.
McpServers = SkipJsonSchema[Annotated[Any, AfterValidator(_check_mcp_servers)]]


class AgentConfig(BaseModel):
    """The config keys Zerg reads, each checked; any other key is stored as given.

    The whole config is at most 16 KiB as JSON and nested at most 10 levels deep. Also read:
    `mcp_servers`, the MCP servers whose tools the agent gets (see the README's MCP tools).
    """

    model_config = ConfigDict(extra="allow", strict=True)

    base_url: BaseUrl | None = Field(
        default=None,
        description="Base URL of an OpenAI- or Anthropic-compatible server. It must be the "
        "provider's own endpoint, OPENAI_BASE_URL, or listed in ZERG_MODEL_BASE_URLS: the "
        "server's API key is sent to it.",
    )
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries of a failed model call.")
    request_timeout_s: float = Field(
        default=120, gt=0, le=600, description="Seconds one model call may take."
    )
    max_steps: int = Field(
        default=50,
        ge=1,
        description="Model and tool calls one run may make; at most ZERG_MAX_AGENT_STEPS "
        "(200 unless the server sets it).",
    )
    mcp_servers: McpServers = Field(
        default=None,
        description=f"MCP servers whose tools the agent also gets, by name (at most "
        f'{MAX_MCP_SERVERS}): {{"transport": "stdio", "command": ..., "args": [...], '
        f'"env": {{...}}}} or {{"transport": "streamable_http", "url": ..., '
        f'"headers": {{...}}}}. stdio commands run on the server: see ZERG_MCP_STDIO.',
    )


def _too_deep(value: Any) -> bool:
    """Whether lists and objects nest more than MAX_CONFIG_DEPTH levels in `value` (a flat
    object is one level); iterative, so a hostile nesting cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        if level > MAX_CONFIG_DEPTH:
            return True
        stack.extend((child, level + 1) for child in item)
    return False


def _check_config(value: dict[str, Any]) -> dict[str, Any]:
    if _too_deep(value):
        raise ValueError(f"must not nest objects and lists more than {MAX_CONFIG_DEPTH} deep")
    # surrogatepass: a lone surrogate is refused by the storable check, with its own message.
    size = len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise ValueError(f"must be at most {MAX_CONFIG_BYTES} bytes as JSON, not {size}")
    try:
        AgentConfig.model_validate(value)
    except ValidationError as exc:
        raise ValueError("; ".join(_describe(error) for error in exc.errors())) from None
    return value


def _describe(error: ErrorDetails) -> str:
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "string_pattern_mismatch":
        return f"{location}: {_NOT_A_BASE_URL}"  # base_url is the only key with a pattern
    return f"{location}: " + error["msg"].removeprefix("Value error, ")


# Validated as a plain dict, so that the keys the client did not send are not stored;
# documented as AgentConfig, so that the OpenAPI schema states every bound.
Config = Annotated[
    dict[str, Any],
    AfterValidator(_check_config),
    WithJsonSchema(AgentConfig.model_json_schema()),
]


class _AgentInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _reject_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = sorted(READ_ONLY_FIELDS.intersection(data))
            if given:
                raise ValueError(f"read-only field(s) cannot be set: {', '.join(given)}")
        return data

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return storable(value)


class AgentCreate(_AgentInput):
    name: Name
    model: Model
    system_instructions: Instructions = ""
    task_instructions: Instructions | None = None
    tools: Tools = Field(default_factory=list)
    schedule: Schedule = None
    timezone: Timezone = "UTC"
    run_on_schedule: bool = True
    missed_fires: MissedFires = "run_once"
    concurrency: Concurrency = "reject"
    timeout_s: TimeoutS = 600
    notify_url: NotifyUrl = None
    config: Config = Field(default_factory=dict)
    max_run_tokens: TokenLimit = None
    max_run_cost_usd: CostLimit = None
    max_day_tokens: TokenLimit = None
    max_day_cost_usd: CostLimit = None


class AgentUpdate(_AgentInput):
    """A partial update: only the fields sent are changed."""

    name: Name | None = None
    model: Model | None = None
    system_instructions: Instructions | None = None
    task_instructions: Instructions | None = None
    tools: Tools | None = None
    schedule: Schedule = None
    timezone: Timezone | None = None
    run_on_schedule: bool | None = None
    missed_fires: MissedFires | None = None
    concurrency: Concurrency | None = None
    timeout_s: TimeoutS | None = None
    notify_url: NotifyUrl = None
    config: Config | None = None
    max_run_tokens: TokenLimit = None
    max_run_cost_usd: CostLimit = None
    max_day_tokens: TokenLimit = None
    max_day_cost_usd: CostLimit = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> "AgentUpdate":
        nullable = {"task_instructions", "schedule", "notify_url", *BUDGET_FIELDS}
        nulls = sorted(
            name for name in self.model_fields_set - nullable if getattr(self, name) is None
        )
        if nulls:
            raise ValueError(f"field(s) cannot be null: {', '.join(nulls)}")
        return self


class AgentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_id: int | None  # None: the built-in local owner of a Zerg without users
    name: str
    model: str
    system_instructions: str
    task_instructions: str | None
    tools: list[str]
    schedule: str | None
    timezone: str
    run_on_schedule: bool
    missed_fires: MissedFires
    concurrency: Concurrency
    timeout_s: int
    status: AgentStatus
    last_run_at: datetime | None
    next_run_at: datetime | None
    last_error: str | None
    notify_url: str | None
    config: dict[str, Any]
    max_run_tokens: int | None = None
    max_run_cost_usd: float | None = None
    max_day_tokens: int | None = None
    max_day_cost_usd: float | None = None
    created_at: datetime
    updated_at: datetime


class AgentSchedule(BaseModel):
    """An agent's schedule and its next fire times (UTC; none when it cannot fire)."""

    schedule: str | None
    timezone: str
    run_on_schedule: bool
    fire_times: list[datetime]
