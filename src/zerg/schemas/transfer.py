"""The file `zerg export` writes and `zerg import` reads: a user's agents, as `AgentCreate`
takes them, and their webhook triggers' settings. Secrets are never in it."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zerg.schemas.agents import AgentCreate
from zerg.schemas.triggers import TriggerCreate

FORMAT_VERSION = 1


class AgentEntry(AgentCreate):
    """An agent's settings (every field `AgentCreate` takes, so new ones come along) and its
    webhook triggers."""

    triggers: list[TriggerCreate] = Field(default_factory=list)


def agent_fields() -> list[str]:
    """The fields of an agent a user sets, in the order the file lists them."""
    return list(AgentCreate.model_fields)


class TransferFile(BaseModel):
    """The envelope; each agent is checked on its own, so that an error names its agent."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = Field(description="The file format's version.")
    agents: list[dict[str, Any]] = Field(default_factory=list)
