"""Prometheus metrics: one registry per process (never the global one), in two scopes.

- **Process** metrics (`Metrics`) describe the process that serves them: its event-loop lag,
  WebSocket connections, rejected webhook deliveries, the schedule fires it claimed. Every
  `zerg serve` and every `zerg worker` (on `ZERG_METRICS_PORT`) has its own; sum them across
  instances.
- **Cluster** metrics (`watch_runs`, on `zerg serve` only) count every run of the deployment:
  they are derived from the run events every process receives (in distributed mode through the
  PostgreSQL relay, which reads back what it missed after a reconnect), and the queue gauges
  are read from the database at scrape time. Every replica reports the same totals: read them
  from one replica, never sum them.

prometheus-client's multiprocess mode (a directory of shared files) is for one server forked
into several processes on one host; Zerg's processes are separate programs, often on separate
hosts, so each keeps plain in-memory values and serves them itself.
"""

import asyncio
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from zerg.db import Database
from zerg.events import EventBus
from zerg.metrics.runs import QueueCollector, RunMetrics

__all__ = ["CONTENT_TYPE_LATEST", "LOOP_LAG_INTERVAL_S", "Metrics", "SchedulerCounts"]

# How often the event-loop monitor wakes up; how late it wakes is the loop's lag.
LOOP_LAG_INTERVAL_S = 0.25
# A bucket below 50 ms, the lag a busy loop should stay under, tells "under" from "about".
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.04, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SchedulerCounts(Protocol):
    """What a scheduler counts (`zerg.scheduler.service.SchedulerService`)."""

    fired: int
    skipped: int
    budget_skipped: int
    missed: int


class Metrics:
    """One process's metrics and the registry that serves them (`exposition`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.websocket_connections = Gauge(
            "zerg_websocket_connections",
            "WebSocket clients connected to this process.",
            registry=self.registry,
        )
        self.webhook_rejections = Counter(
            "zerg_webhook_rejections",
            "Webhook deliveries this process refused, by the error code it answered "
            "(invalid_signature, stale_timestamp, not_found, agent_busy, ...).",
            ["reason"],
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "zerg_event_loop_lag_seconds",
            f"How late this process's event loop ran a timer due every {LOOP_LAG_INTERVAL_S}s.",
            buckets=_LAG_BUCKETS,
            registry=self.registry,
        )
        self.loop_lag_last = Gauge(
            "zerg_event_loop_lag_last_seconds",
            "The event-loop lag measured last.",
            registry=self.registry,
        )
        self.runs: RunMetrics | None = None

    def watch_runs(self, bus: EventBus, database: Database) -> None:
        """Add the cluster-wide run metrics: counted from `bus`, queues read from `database`."""
        self.runs = RunMetrics(self.registry)
        bus.add_listener(self.runs.observe)
        self.registry.register(QueueCollector(database))

    def watch_scheduler(self, scheduler: SchedulerCounts) -> None:
        self.registry.register(_SchedulerCollector(scheduler))

    async def watch_loop_lag(self, interval_s: float = LOOP_LAG_INTERVAL_S) -> None:
        """Until cancelled: sleep `interval_s`, and record how much later than that it woke."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(interval_s)
            lag = max(0.0, loop.time() - started - interval_s)
            self.loop_lag.observe(lag)
            self.loop_lag_last.set(lag)

    def exposition(self) -> bytes:
        """The metrics in Prometheus's text format (reads the database: call off the loop)."""
        return generate_latest(self.registry)


class _SchedulerCollector(Collector):
    def __init__(self, scheduler: SchedulerCounts) -> None:
        self.scheduler = scheduler

    def collect(self) -> list[Metric]:
        fired = CounterMetricFamily(
            "zerg_scheduler_fires",
            "Cron fires this process claimed and started a run for (or tried to).",
            value=self.scheduler.fired,
        )
        skipped = CounterMetricFamily(
            "zerg_scheduler_skips",
            "Cron fires this process skipped: `busy` (the agent was busy and rejects, or its "
            "queue was full) or `budget` (the agent's daily budget was spent).",
            labels=["reason"],
        )
        skipped.add_metric(["busy"], self.scheduler.skipped)
        skipped.add_metric(["budget"], self.scheduler.budget_skipped)
        missed = CounterMetricFamily(
            "zerg_scheduler_missed",
            "Stretches of cron fires missed while no scheduler ran, found by this process.",
            value=self.scheduler.missed,
        )
        return [fired, skipped, missed]
