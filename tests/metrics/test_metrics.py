"""zerg.metrics: run counters that never count twice, the scheduler's counts, and a worker's
own metrics server."""

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from tests.api.test_metrics import Samples, parse, value
from tests.scheduler.test_service import Clock, frozen, make_agent, runs, with_scheduler
from zerg.db import Database
from zerg.errors import Conflict
from zerg.events import Event, EventBus, EventType
from zerg.metrics import Metrics
from zerg.metrics.exporter import MetricsExporter
from zerg.scheduler.service import SchedulerService
from zerg.settings import Settings

__all__ = ["frozen"]  # a fixture, used by name


def run_event(event_id: int, type: EventType, status: str, **data: Any) -> Event:
    fields = {"id": 7, "trigger": "webhook", "status": status, **data}
    return Event(type, fields, id=event_id, agent_id=1, run_id=7)


def scraped(metrics: Metrics) -> Samples:
    return parse(metrics.exposition().decode())


def test_a_run_counts_once_however_often_its_events_come(database: Database) -> None:
    bus = EventBus()
    metrics = Metrics()
    metrics.watch_runs(bus, database)
    usage = {"duration_ms": 2500, "input_tokens": 10, "output_tokens": 4, "cost_usd": 0.01}
    more = {**usage, "input_tokens": 12, "cost_usd": 0.015}
    events = [
        run_event(1, EventType.RUN_CREATED, "queued"),
        run_event(1, EventType.RUN_CREATED, "queued"),  # read again after a relay reconnect
        run_event(2, EventType.RUN_UPDATED, "running"),
        run_event(3, EventType.RUN_UPDATED, "running"),  # resumed after a crash
        run_event(4, EventType.RUN_UPDATED, "cancelled", **usage),
        run_event(5, EventType.RUN_UPDATED, "cancelled", **more),  # a late message's usage
        run_event(6, EventType.RUN_UPDATED, "succeeded", **usage),  # never: a final state holds
        Event(EventType.RUN_UPDATED, {"id": 8, "trigger": "x" * 100, "status": "failed"}, id=9),
    ]
    for event in events:
        bus.deliver(event)

    samples = scraped(metrics)
    hook = {"trigger": "webhook"}
    assert value(samples, "zerg_runs_created_total", **hook) == 1
    assert value(samples, "zerg_runs_started_total", **hook) == 1
    assert value(samples, "zerg_runs_finished_total", **hook, status="cancelled") == 1
    assert value(samples, "zerg_run_duration_seconds_count", **hook, status="cancelled") == 1
    assert value(samples, "zerg_run_duration_seconds_sum", **hook, status="cancelled") == 2.5
    assert value(samples, "zerg_run_tokens_total", **hook, kind="input") == 12
    assert value(samples, "zerg_run_tokens_total", **hook, kind="output") == 4
    assert value(samples, "zerg_run_cost_usd_total", **hook) == pytest.approx(0.015)
    triggers = {dict(labels).get("trigger") for _, labels in samples}
    assert triggers == {None, "manual", "schedule", "webhook", "api", "chat"}


def test_scheduler_fires_and_missed_stretches_are_counted(
    settings: Settings, database: Database, frozen: Clock
) -> None:
    make_agent(settings, database, concurrency="queue")
    metrics = Metrics()

    async def body(schedulers: list[SchedulerService]) -> None:
        metrics.watch_scheduler(schedulers[0])
        frozen.at(12, 3)  # 10:05 ... 12:00 were missed: one catch-up run
        await schedulers[0].tick()
        frozen.at(12, 5, 1)
        await schedulers[0].tick()

    with_scheduler(settings, database, body)

    assert len(runs(database)) == 2
    samples = scraped(metrics)
    assert value(samples, "zerg_scheduler_fires_total") == 2
    assert value(samples, "zerg_scheduler_missed_total") == 1
    assert value(samples, "zerg_scheduler_skips_total", reason="busy") == 0


@dataclass
class Counts:
    fired: int = 5
    skipped: int = 2
    budget_skipped: int = 1
    missed: int = 0


def test_scheduler_skips_are_counted_by_reason() -> None:
    metrics = Metrics()
    metrics.watch_scheduler(Counts())

    samples = scraped(metrics)

    assert value(samples, "zerg_scheduler_skips_total", reason="busy") == 2
    assert value(samples, "zerg_scheduler_skips_total", reason="budget") == 1


def test_the_loop_lag_monitor_records_how_late_it_woke() -> None:
    metrics = Metrics()

    async def main() -> None:
        monitor = asyncio.create_task(metrics.watch_loop_lag(interval_s=0.01))
        await asyncio.sleep(0.02)
        time.sleep(0.1)  # noqa: ASYNC251 (on purpose: the monitor wakes ~0.1 s late)
        await asyncio.sleep(0.05)
        monitor.cancel()

    asyncio.run(main())

    samples = scraped(metrics)
    assert value(samples, "zerg_event_loop_lag_seconds_count") >= 2
    assert value(samples, "zerg_event_loop_lag_seconds_bucket", le="0.05") < value(
        samples, "zerg_event_loop_lag_seconds_count"
    )


def test_a_worker_serves_its_metrics_with_the_metrics_token() -> None:
    token = "t" * 32
    settings = Settings(metrics_port=0, metrics_host="0.0.0.0", metrics_token=SecretStr(token))
    metrics = Metrics()
    metrics.websocket_connections.set(3)
    exporter = MetricsExporter(settings, metrics)
    url = f"http://127.0.0.1:{exporter.port}"
    try:
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer x"}).status_code == 401
        assert httpx.get(f"{url}/").status_code == 404
        answer = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        assert value(parse(answer.text), "zerg_websocket_connections") == 3
        taken = settings.model_copy(update={"metrics_port": exporter.port})
        with pytest.raises(Conflict, match="cannot serve metrics on"):
            MetricsExporter(taken, metrics)
    finally:
        exporter.stop()


def test_a_worker_never_serves_metrics_openly_by_accident() -> None:
    with pytest.raises(ValidationError, match="ZERG_METRICS_TOKEN"):
        Settings(metrics_port=9100, metrics_host="0.0.0.0")
    assert Settings(metrics_port=9100, metrics_host="0.0.0.0", metrics_public=True)
    assert Settings(metrics_port=9100)  # loopback
