"""Shapes shared by every resource: pages and errors."""

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` as `after` to get the next one."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Opaque cursor of the next page, or null when this is the last page."
    )


class ErrorBody(BaseModel):
    """The body of every error response."""

    detail: str = Field(description="What went wrong and why, for a human.")
    code: str = Field(description="Stable machine-readable error code.")
