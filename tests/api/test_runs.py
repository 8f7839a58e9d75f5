"""/api/runs: run records, read-only; rows are written through the ORM as the run engine would."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.api.helpers import Rows, assert_error, ids, walk

NOON = datetime(2026, 5, 6, 12, 0, tzinfo=UTC)
RUN_FIELDS = {
    "id", "agent_id", "thread_id", "trigger", "status", "queued_at", "started_at", "finished_at",
    "duration_ms", "input_tokens", "output_tokens", "total_tokens", "cost_usd", "error",
    "error_code",
}  # fmt: skip


def _list(client: httpx.Client, **params: Any) -> list[int]:
    response = client.get("/api/runs", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return ids(response.json()["items"])


def test_get_returns_every_field(client: httpx.Client, rows: Rows) -> None:
    agent_id = rows.agent()
    thread_id = rows.thread(agent_id, thread_type="api")
    run_id = rows.run(
        agent_id,
        thread_id=thread_id,
        trigger="api",
        status="failed",
        queued_at=NOON,
        started_at=NOON + timedelta(seconds=1),
        finished_at=NOON + timedelta(seconds=3, milliseconds=250),
        duration_ms=2250,
        input_tokens=100,
        output_tokens=20,
        total_tokens=120,
        cost_usd=0.0042,
        error="model timed out",
        error_code="budget_exceeded",
        idempotency_key="api:abc",
    )

    response = client.get(f"/api/runs/{run_id}")

    assert response.status_code == 200
    assert response.json() == {
        "id": run_id,
        "agent_id": agent_id,
        "thread_id": thread_id,
        "trigger": "api",
        "status": "failed",
        "queued_at": "2026-05-06T12:00:00Z",
        "started_at": "2026-05-06T12:00:01Z",
        "finished_at": "2026-05-06T12:00:03.250000Z",
        "duration_ms": 2250,
        "input_tokens": 100,
        "output_tokens": 20,
        "total_tokens": 120,
        "cost_usd": 0.0042,
        "error": "model timed out",
        "error_code": "budget_exceeded",
    }


def test_a_queued_run_has_empty_timings(client: httpx.Client, rows: Rows) -> None:
    run_id = rows.run(rows.agent(), queued_at=NOON)

    run = client.get(f"/api/runs/{run_id}").json()

    assert set(run) == RUN_FIELDS
    assert run["status"] == "queued"
    assert run["queued_at"] == "2026-05-06T12:00:00Z"
    assert [run[f] for f in ("thread_id", "started_at", "finished_at", "duration_ms")] == [None] * 4
    assert [run[f] for f in ("input_tokens", "output_tokens", "total_tokens")] == [0, 0, 0]
    assert (run["cost_usd"], run["error"]) == (None, None)


def test_missing_run_is_404(client: httpx.Client) -> None:
    response = client.get("/api/runs/31337")

    assert response.status_code == 404
    assert response.json() == {"detail": "run 31337 does not exist", "code": "not_found"}


def test_list_is_newest_first_with_full_records(client: httpx.Client, rows: Rows) -> None:
    agent_id = rows.agent()
    run_ids = [rows.run(agent_id, queued_at=NOON + timedelta(minutes=i)) for i in range(3)]

    response = client.get("/api/runs")

    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    assert ids(body["items"]) == run_ids[::-1]
    assert body["items"][0] == client.get(f"/api/runs/{run_ids[2]}").json()


def test_list_filters_by_agent_status_and_trigger(client: httpx.Client, rows: Rows) -> None:
    a, b = rows.agent(), rows.agent()
    a_manual_ok = rows.run(a, trigger="manual", status="succeeded")
    a_schedule_failed = rows.run(a, trigger="schedule", status="failed")
    b_webhook_ok = rows.run(b, trigger="webhook", status="succeeded")
    b_chat_running = rows.run(b, trigger="chat", status="running")
    a_api_timed_out = rows.run(a, trigger="api", status="timed_out")

    assert _list(client, agent_id=a) == [a_api_timed_out, a_schedule_failed, a_manual_ok]
    assert _list(client, agent_id=b) == [b_chat_running, b_webhook_ok]
    assert _list(client, status="succeeded") == [b_webhook_ok, a_manual_ok]
    assert _list(client, status="timed_out") == [a_api_timed_out]
    assert _list(client, status="queued") == []
    assert _list(client, trigger="schedule") == [a_schedule_failed]
    assert _list(client, trigger="chat") == [b_chat_running]
    assert _list(client, agent_id=a, status="succeeded") == [a_manual_ok]
    assert _list(client, agent_id=b, status="succeeded", trigger="manual") == []
    assert _list(client, agent_id=b + 100) == []


def test_list_filters_by_queue_time_with_any_offset(client: httpx.Client, rows: Rows) -> None:
    agent_id = rows.agent()
    at_10, at_11, at_12 = (
        rows.run(agent_id, queued_at=NOON - timedelta(hours=hours)) for hours in (2, 1, 0)
    )

    # 12:30+02:00 is 10:30 UTC; `since` is inclusive, `until` exclusive.
    assert _list(client, since="2026-05-06T12:30:00+02:00") == [at_12, at_11]
    assert _list(client, since="2026-05-06T11:00:00Z") == [at_12, at_11]
    assert _list(client, since="2026-05-06T07:00:00-05:00") == [at_12]
    assert _list(client, until="2026-05-06T11:00:00+00:00") == [at_10]
    assert _list(client, until="2026-05-06T13:30:00+02:00") == [at_11, at_10]
    assert _list(client, since="2026-05-06T10:00:00Z", until="2026-05-06T12:00:00Z") == [
        at_11,
        at_10,
    ]
    assert _list(client, since="2026-05-06T12:00:01Z") == []
    assert _list(client, since="2026-05-06T11:00:00Z", agent_id=agent_id, status="queued") == [
        at_12,
        at_11,
    ]


def test_list_refuses_invalid_filters(client: httpx.Client) -> None:
    for params, fragments in [
        ({"since": "2026-05-06T12:00:00"}, ("since:", "timezone")),
        ({"until": "2026-05-06T12:00:00"}, ("until:", "timezone")),
        ({"since": "yesterday"}, ("since:",)),
        ({"status": "done"}, ("status:", "'queued'", "'timed_out'")),
        ({"trigger": "cron"}, ("trigger:", "'manual'", "'schedule'")),
        ({"agent_id": "first"}, ("agent_id:", "valid integer")),
    ]:
        response = client.get("/api/runs", params=params)

        assert_error(response, 422, "validation_error", *fragments, case=params)


def test_list_refuses_times_that_leave_the_calendar_in_utc(client: httpx.Client) -> None:
    for name, value in [
        ("since", "0001-01-01T00:00:00+14:00"),
        ("until", "0001-01-01T00:00:00+00:01"),
        ("since", "9999-12-31T23:59:59-14:00"),
        ("until", "9999-12-31T23:59:59.999999-00:01"),
    ]:
        response = client.get("/api/runs", params={name: value})

        assert_error(
            response,
            422,
            "validation_error",
            f"{name}:",
            "between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z",
            case=value,
        )


def test_list_accepts_the_ends_of_the_calendar(client: httpx.Client, rows: Rows) -> None:
    run_id = rows.run(rows.agent(), queued_at=NOON)

    assert _list(client, since="0001-01-01T00:00:00Z", until="9999-12-31T23:59:59.999999Z") == [
        run_id
    ]
    assert _list(client, since="0001-01-01T00:00:00-14:00") == [run_id]
    assert _list(client, until="9999-12-31T23:59:59+14:00") == [run_id]


def test_paging_keeps_the_filters(client: httpx.Client, rows: Rows) -> None:
    a, b = rows.agent(), rows.agent()
    wanted = []
    for _ in range(7):
        wanted.append(rows.run(a, status="succeeded"))
        rows.run(a, status="failed")
        rows.run(b, status="succeeded")

    pages = walk(client, "/api/runs", limit=3, params={"agent_id": a, "status": "succeeded"})

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [run_id for page in pages for run_id in ids(page)] == wanted[::-1]
