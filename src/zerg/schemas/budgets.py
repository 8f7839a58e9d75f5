"""Budget shapes: what an agent's runs used today, against its daily limits."""

from datetime import date, datetime

from pydantic import BaseModel, Field


class AgentUsage(BaseModel):
    """What the agent's runs queued this UTC day used, and whether its daily budget is spent."""

    agent_id: int
    day: date = Field(description="The UTC day counted.")
    since: datetime = Field(description="The day's start (UTC midnight), inclusive.")
    until: datetime = Field(description="The next day's start, exclusive.")
    tokens: int = Field(description="Input + output tokens of the day's runs.")
    cost_usd: float = Field(description="US dollars of the day's model calls with a known price.")
    max_day_tokens: int | None
    max_day_cost_usd: float | None
    spent: bool = Field(
        description="A daily limit is reached: triggers answer 429 until the next UTC day."
    )
