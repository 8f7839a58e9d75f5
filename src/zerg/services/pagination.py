"""Keyset pagination by primary key, behind an opaque cursor.

Paging by `id` (not by offset) keeps pages stable while rows are inserted: a new row never
shifts an already-served row into the next page.
"""

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from zerg.errors import InvalidInput
from zerg.schemas.common import MAX_ID

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_PREFIX = "v1:"
T = TypeVar("T")


@dataclass(frozen=True)
class PageResult(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(_PREFIX):
            raise ValueError(raw)
        last_id = int(raw.removeprefix(_PREFIX))
        if not 0 < last_id <= MAX_ID:
            raise ValueError(raw)
        return last_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "'after' is not a cursor this server issued; pass a next_cursor from a list response",
            code="invalid_cursor",
        ) from None


def paginate(
    session: Session,
    stmt: Select[T],
    key: InstrumentedAttribute[int],
    *,
    limit: int,
    after: str | None,
    descending: bool = False,
) -> PageResult[T]:
    """Run `stmt` one page at a time, ordered by `key` (a unique integer column)."""
    if after is not None:
        last = decode_cursor(after)
        stmt = stmt.where(key < last if descending else key > last)
    order: Any = key.desc() if descending else key.asc()
    rows = list(session.scalars(stmt.order_by(order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(getattr(rows[-1], key.key)) if more and rows else None
    return PageResult(items=rows, next_cursor=next_cursor)
