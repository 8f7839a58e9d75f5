"""Cursor paging, the same on every list: agents, threads, a thread's messages, runs."""

import base64
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from tests.api.helpers import Rows, assert_error, ids, walk
from zerg.models import Agent, Base, Message, Run, Thread

LISTS = ["agents", "threads", "messages", "runs"]


@dataclass
class Listing:
    """One list endpoint, with a way to add rows to it straight in the database."""

    url: str
    add: Callable[[int], list[int]]
    model: type[Base]
    newest_first: bool

    def in_list_order(self, row_ids: list[int]) -> list[int]:
        return sorted(row_ids, reverse=self.newest_first)


@pytest.fixture(params=LISTS)
def listing(request: pytest.FixtureRequest, rows: Rows) -> Listing:
    if request.param == "agents":
        return Listing("/api/agents", rows.agents, Agent, newest_first=False)
    agent_id = rows.agent()
    if request.param == "threads":
        return Listing(
            "/api/threads", lambda n: rows.threads(agent_id, n), Thread, newest_first=True
        )
    if request.param == "runs":
        return Listing("/api/runs", lambda n: rows.runs(agent_id, n), Run, newest_first=True)
    thread_id = rows.thread(agent_id)
    return Listing(
        f"/api/threads/{thread_id}/messages",
        lambda n: rows.messages(thread_id, n),
        Message,
        newest_first=False,
    )


def _page(client: httpx.Client, url: str, **params: str | int) -> tuple[list[int], str | None]:
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return ids(body["items"]), body["next_cursor"]


def test_default_page_is_50_and_the_largest_200(client: httpx.Client, listing: Listing) -> None:
    expected = listing.in_list_order(listing.add(201))

    first, cursor = _page(client, listing.url)
    assert (first, cursor is not None) == (expected[:50], True)

    biggest, cursor = _page(client, listing.url, limit=200)
    assert biggest == expected[:200]
    assert cursor is not None
    last, cursor = _page(client, listing.url, limit=200, after=cursor)
    assert (last, cursor) == (expected[200:], None)


def test_walking_the_pages_returns_every_row_once(client: httpx.Client, listing: Listing) -> None:
    assert walk(client, listing.url, limit=5) == [[]]
    expected = listing.in_list_order(listing.add(23))

    for limit, sizes in [(5, [5, 5, 5, 5, 3]), (23, [23]), (22, [22, 1]), (1, [1] * 23)]:
        pages = walk(client, listing.url, limit=limit)

        assert [len(page) for page in pages] == sizes, limit
        assert [row_id for page in pages for row_id in ids(page)] == expected, limit


def test_rows_added_between_pages_neither_repeat_nor_hide_rows(
    client: httpx.Client, listing: Listing
) -> None:
    existing = listing.in_list_order(listing.add(9))
    added: list[int] = []
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params = {"limit": 4} if cursor is None else {"limit": 4, "after": cursor}
        page, cursor = _page(client, listing.url, **params)
        seen += page
        added += listing.add(2)
        if cursor is None:
            break
        assert len(seen) < 100

    assert len(seen) == len(set(seen)), f"a row came back twice: {seen}"
    assert [row_id for row_id in seen if row_id in existing] == existing
    if listing.newest_first:
        # New rows are newer than every row served: they belong before the first page.
        assert seen == existing
    else:
        # Oldest first: rows added before the walk ends show up once, at the end.
        assert seen[: len(existing)] == existing
        assert seen[len(existing) :] == added[: len(seen) - len(existing)]


def test_deleting_the_row_under_the_cursor_skips_nothing(
    client: httpx.Client, listing: Listing, rows: Rows
) -> None:
    expected = listing.in_list_order(listing.add(6))
    first, cursor = _page(client, listing.url, limit=3)
    assert cursor is not None
    rows.delete(listing.model, first[-1])

    rest, cursor = _page(client, listing.url, limit=3, after=cursor)

    assert (first, rest, cursor) == (expected[:3], expected[3:], None)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


INVALID_CURSORS = [
    "garbage",
    "",
    "%%%",
    "ü",
    _b64("v2:5"),
    _b64("v1:five"),
    _b64("v1:0"),
    _b64("v1:-3"),
    _b64("v1:2147483648"),
    _b64("v1:99999999999999999999999"),
]


def test_a_bad_limit_or_cursor_is_refused(client: httpx.Client, listing: Listing) -> None:
    listing.add(3)

    for limit in ("0", "201", "-1", "ten", ""):
        response = client.get(listing.url, params={"limit": limit})

        assert_error(response, 422, "validation_error", "limit:", case=limit)
    for after in INVALID_CURSORS:
        response = client.get(listing.url, params={"after": after})

        assert response.status_code == 422, after
        assert response.json() == {
            "detail": "'after' is not a cursor this server issued; "
            "pass a next_cursor from a list response",
            "code": "invalid_cursor",
        }
