"""Shapes shared by every resource: ids, storable values, pages and errors."""

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from annotated_types import Ge, Le
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field

T = TypeVar("T")

# Ids are INTEGER columns (32-bit on PostgreSQL). A larger number must fail validation: as a query
# parameter it makes PostgreSQL (out of range) and SQLite (OverflowError) raise.
MAX_ID = 2**31 - 1
Id = Annotated[int, Ge(1), Le(MAX_ID)]

EARLIEST_UTC, LATEST_UTC = "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"


def _to_utc(value: datetime) -> datetime:
    # Near the ends of the calendar an offset can push the instant out of Python's range
    # (0001-01-01T00:00:00+14:00 is in year 0), and the database call would overflow.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"must be between {EARLIEST_UTC} and {LATEST_UTC} once in UTC") from None


# A moment with its UTC offset, as an aware UTC datetime.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


def storable(value: T) -> T:
    """`value`, if both databases can store it; JSON can carry what they cannot.

    PostgreSQL refuses NUL characters in text and JSONB, neither database encodes a lone UTF-16
    surrogate, and NaN and Infinity are not JSON.
    """
    _check_storable(value)
    return value


def _check_storable(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain the NUL character (U+0000)")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("must not contain a lone surrogate (U+D800-U+DFFF)") from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number (NaN and Infinity are not JSON)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key)
            _check_storable(item)
    elif isinstance(value, list):
        for item in value:
            _check_storable(item)


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
