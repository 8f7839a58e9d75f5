"""Run shapes."""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

RunTrigger = Literal["manual", "schedule", "webhook", "api", "chat"]


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    agent_id: int
    thread_id: int | None
    trigger: RunTrigger
    status: RunStatus
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None
    error: str | None
    # Why a run failed, for machines: `budget_exceeded`; None for other outcomes.
    error_code: str | None = None
