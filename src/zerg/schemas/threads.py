"""Thread and message shapes."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from zerg.schemas.common import Id, storable

ThreadType = Literal["chat", "manual", "scheduled", "webhook", "api"]
Role = Literal["system", "user", "assistant", "tool"]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(storable),
    # What the validators refuse (blank once stripped, NUL), stated for clients; the validators
    # themselves keep their clearer messages.
    Field(json_schema_extra={"pattern": r"^[^\x00]*[^\x00\s][^\x00]*$"}),
]


def _not_null(schema: dict[str, Any]) -> None:
    # Left out means unchanged and null is refused, so the schema offers the value's type only
    # (no null, no null default). The field stays `X | None` for the clearer errors of a
    # nullable field over those of a union.
    schema.pop("default", None)
    options = [option for option in schema.pop("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options


class ThreadCreate(BaseModel):
    """A new chat thread for an agent; it starts with the agent's system message."""

    model_config = ConfigDict(extra="forbid")

    agent_id: Id
    title: Title | None = None


class ThreadUpdate(BaseModel):
    """A partial update: only the fields sent are changed; neither may be null."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = Field(default=None, json_schema_extra=_not_null)
    active: bool | None = Field(default=None, json_schema_extra=_not_null)

    @model_validator(mode="after")
    def _no_nulls(self) -> "ThreadUpdate":
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"field(s) cannot be null: {', '.join(nulls)}")
        return self


# As long as an agent's instructions may be.
MAX_MESSAGE_CHARS = 100_000


class ChatMessageCreate(BaseModel):
    """The user's next message in a chat thread."""

    model_config = ConfigDict(extra="forbid")

    content: Annotated[
        str,
        StringConstraints(min_length=1, max_length=MAX_MESSAGE_CHARS),
        AfterValidator(storable),
    ]


class ThreadRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    agent_id: int
    title: str
    thread_type: ThreadType
    active: bool
    created_at: datetime
    updated_at: datetime


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    thread_id: int
    role: Role
    content: str
    tool_calls: list[dict[str, Any]] | None
    tool_call_id: str | None
    name: str | None
    processed: bool
    metadata: dict[str, Any] = Field(validation_alias="meta")
    created_at: datetime
