"""Webhook trigger shapes. A secret is shown only when it is created or rotated."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Scheme = Literal["standard", "github"]


class TriggerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheme: Scheme = Field(
        default="standard",
        description="`standard` (Standard Webhooks signatures) or `github` (X-Hub-Signature-256).",
    )


class TriggerRead(BaseModel):
    id: int
    agent_id: int
    public_id: str = Field(description="The random id in the delivery URL: `/hooks/{public_id}`.")
    scheme: Scheme
    url: str = Field(description="Where senders POST deliveries.")
    created_at: datetime
    last_fired_at: datetime | None


class TriggerCreated(TriggerRead):
    secret: str = Field(description="The signing secret; shown only now.")


class TriggerRotated(BaseModel):
    id: int
    secret: str = Field(description="The new signing secret; shown only now.")
    previous_secret_valid_until: datetime = Field(
        description="Until then deliveries signed with the previous secret are accepted too."
    )
