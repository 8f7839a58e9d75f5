"""Helpers for the API tests: error checks, list walking, a frozen clock, and database rows.

Runs, messages and triggers have no create endpoint yet, and seeding hundreds of rows for paging
tests is faster without HTTP, so `Rows` inserts them the way the services would.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import ColumnElement, func, select

from zerg.db import Database
from zerg.models import Agent, Base, Message, Run, Thread, Trigger
from zerg.schemas.threads import Role
from zerg.services.threads import ThreadService

Model = TypeVar("Model", bound=Base)
# POSTs an agent (name and model defaulted) and returns the created body: the `make_agent` fixture.
AgentFactory = Callable[..., dict[str, Any]]
T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
T0_JSON = "2026-03-04T05:06:07Z"


class FrozenClock:
    """A clock that stands still until a test moves it; the server thread reads it too."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def assert_error(
    response: httpx.Response, status: int, code: str, *fragments: str, case: object = None
) -> str:
    """Check an error answer (`{"detail", "code"}`, plus `errors` on 422) and return its detail.

    `case` names the input in the failure message, for checks made in a loop.
    """
    where = f"[{case!r}] " if case is not None else ""
    assert response.status_code == status, f"{where}{response.status_code} {response.text}"
    body = response.json()
    assert body["code"] == code, f"{where}{body}"
    expected_keys = (
        {"detail", "code", "errors"} if code == "validation_error" else {"detail", "code"}
    )
    assert set(body) == expected_keys, f"{where}{body}"
    detail = body["detail"]
    assert isinstance(detail, str) and detail, f"{where}{body}"
    for fragment in fragments:
        assert fragment in detail, f"{where}{fragment!r} not in {detail!r}"
    return detail


def walk(
    client: httpx.Client, url: str, *, limit: int, params: dict[str, Any] | None = None
) -> list[list[dict[str, Any]]]:
    """Every page of a list, following next_cursor until it is null."""
    pages: list[list[dict[str, Any]]] = []
    after: str | None = None
    while True:
        query = {**(params or {}), "limit": limit}
        if after is not None:
            query["after"] = after
        response = client.get(url, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        pages.append(body["items"])
        after = body["next_cursor"]
        if after is None:
            return pages
        assert len(pages) < 1000, "the cursor never ends"


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


class Rows:
    """Rows inserted (and read back) through the ORM, each call in its own committed session."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def agent(self, **fields: Any) -> int:
        return self.agents(1, **fields)[0]

    def agents(self, count: int, **fields: Any) -> list[int]:
        fields = {"name": "seeded", "model": "scripted:echo", **fields}
        return self._add([Agent(**fields) for _ in range(count)])

    def thread(self, agent_id: int, **fields: Any) -> int:
        return self.threads(agent_id, 1, **fields)[0]

    def threads(self, agent_id: int, count: int, **fields: Any) -> list[int]:
        fields = {"title": "seeded", "thread_type": "manual", **fields}
        return self._add([Thread(agent_id=agent_id, **fields) for _ in range(count)])

    def message(self, thread_id: int, *, role: Role, content: str, **fields: Any) -> int:
        with self.database.transaction() as db:
            message = ThreadService.add_message(db, thread_id, role=role, content=content, **fields)
            return message.id

    def messages(self, thread_id: int, count: int) -> list[int]:
        return self._add(
            [Message(thread_id=thread_id, role="user", content=f"m{i}") for i in range(count)]
        )

    def run(self, agent_id: int, **fields: Any) -> int:
        return self.runs(agent_id, 1, **fields)[0]

    def runs(self, agent_id: int, count: int, **fields: Any) -> list[int]:
        fields = {"trigger": "manual", **fields}
        return self._add([Run(agent_id=agent_id, **fields) for _ in range(count)])

    def trigger(self, agent_id: int) -> int:
        return self._add([Trigger(agent_id=agent_id, secret="whsec_test")])[0]

    def get(self, model: type[Model], row_id: int) -> Model | None:
        with self.database.session() as session:
            return session.get(model, row_id)

    def count(self, model: type[Model], *where: ColumnElement[bool]) -> int:
        with self.database.session() as session:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def delete(self, model: type[Model], row_id: int) -> None:
        with self.database.session() as session:
            session.delete(session.get_one(model, row_id))
            session.commit()

    def _add(self, objects: list[Any]) -> list[int]:
        with self.database.session() as session:
            session.add_all(objects)
            session.commit()
            return [obj.id for obj in objects]
