"""Agent shapes: what a client may send, and what it reads back."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from zerg.agents.catalog import BUILTIN_TOOL_NAMES, MODEL_PROVIDERS
from zerg.schemas.common import storable


class AgentStatus(StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    ERROR = "error"


Concurrency = Literal["reject", "queue"]
MissedFires = Literal["run_once", "skip"]
READ_ONLY_FIELDS = frozenset(
    {"id", "status", "last_run_at", "next_run_at", "last_error", "created_at", "updated_at"}
)


def _check_model(value: str) -> str:
    provider, sep, name = value.partition(":")
    if not sep or not name.strip():
        raise ValueError("model must look like 'provider:name', e.g. 'openai:gpt-4o-mini'")
    if provider not in MODEL_PROVIDERS:
        known = ", ".join(MODEL_PROVIDERS)
        raise ValueError(f"unknown model provider '{provider}'; known providers: {known}")
    return value


def _check_schedule(value: str | None) -> str | None:
    if value is None:
        return None
    if not croniter.is_valid(value):
        raise ValueError(f"'{value}' is not a valid cron expression (e.g. '0 9 * * 1-5')")
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
    system_instructions: str = ""
    task_instructions: str | None = None
    tools: Tools = Field(default_factory=list)
    schedule: Schedule = None
    timezone: Timezone = "UTC"
    run_on_schedule: bool = True
    missed_fires: MissedFires = "run_once"
    concurrency: Concurrency = "reject"
    timeout_s: TimeoutS = 600
    notify_url: NotifyUrl = None
    config: dict[str, Any] = Field(default_factory=dict)


class AgentUpdate(_AgentInput):
    """A partial update: only the fields sent are changed."""

    name: Name | None = None
    model: Model | None = None
    system_instructions: str | None = None
    task_instructions: str | None = None
    tools: Tools | None = None
    schedule: Schedule = None
    timezone: Timezone | None = None
    run_on_schedule: bool | None = None
    missed_fires: MissedFires | None = None
    concurrency: Concurrency | None = None
    timeout_s: TimeoutS | None = None
    notify_url: NotifyUrl = None
    config: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> "AgentUpdate":
        nullable = {"task_instructions", "schedule", "notify_url"}
        nulls = sorted(
            name for name in self.model_fields_set - nullable if getattr(self, name) is None
        )
        if nulls:
            raise ValueError(f"field(s) cannot be null: {', '.join(nulls)}")
        return self


class AgentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
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
    created_at: datetime
    updated_at: datetime


class AgentSchedule(BaseModel):
    """An agent's schedule and its next fire times (UTC)."""

    schedule: str | None
    timezone: str
    run_on_schedule: bool
    fire_times: list[datetime]
