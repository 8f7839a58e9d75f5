"""Cluster-wide run metrics: counters kept from run events, queue gauges read at scrape time.

A run's events carry the run as stored (trigger, status, duration, tokens, cost), so nothing on
the run path counts anything. The bus delivers a stored event once per process (it skips ids it
has seen, e.g. read again after a relay reconnect); beyond that, a run is counted as created,
started and finished at most once here, since a run can announce a status twice (`running`
again when resumed after a crash; `cancelled` again with the usage of a message stored while
the cancel landed, whose extra tokens are then added).
"""

import logging
import threading
from collections import OrderedDict
from typing import Any, get_args

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from zerg import clock
from zerg.db import Database
from zerg.events import Event, EventType
from zerg.models import Run
from zerg.schemas.runs import RunStatus, RunTrigger

logger = logging.getLogger(__name__)

TRIGGERS = get_args(RunTrigger)
FINAL = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT)
# How many runs' "already counted" marks are kept: far more than run at once.
_REMEMBERED = 10_000
_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class RunMetrics:
    """Runs created, started and finished, their duration, tokens and cost, by trigger."""

    def __init__(self, registry: CollectorRegistry) -> None:
        scope = "Cluster-wide (the same on every replica; do not sum)"
        self.created = Counter(
            "zerg_runs_created", f"Runs recorded (queued). {scope}.", ["trigger"], registry=registry
        )
        self.started = Counter(
            "zerg_runs_started",
            f"Runs that began executing. {scope}.",
            ["trigger"],
            registry=registry,
        )
        self.finished = Counter(
            "zerg_runs_finished",
            f"Runs that ended, by final status. {scope}.",
            ["trigger", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "zerg_run_duration_seconds",
            f"Time from a run's start (its queueing, if it never started) to its end. {scope}.",
            ["trigger", "status"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "zerg_run_tokens",
            f"Model tokens used by finished runs, by kind (input, output). {scope}.",
            ["trigger", "kind"],
            registry=registry,
        )
        self.cost = Counter(
            "zerg_run_cost_usd",
            f"Cost of finished runs in US dollars, where the model's price is known. {scope}.",
            ["trigger"],
            registry=registry,
        )
        for trigger in TRIGGERS:  # every series exists from the start, at 0
            self.created.labels(trigger)
            self.started.labels(trigger)
            self.cost.labels(trigger)
            for kind in ("input", "output"):
                self.tokens.labels(trigger, kind)
            for status in FINAL:
                self.finished.labels(trigger, status.value)
        self._lock = threading.Lock()
        self._created: OrderedDict[int, None] = OrderedDict()
        self._started: OrderedDict[int, None] = OrderedDict()
        # Finished runs: the usage counted so far (input tokens, output tokens, cost).
        self._usage: OrderedDict[int, tuple[int, int, float]] = OrderedDict()

    def observe(self, event: Event) -> None:
        """A bus listener: runs in the publisher's thread, for every event."""
        if event.type not in (EventType.RUN_CREATED, EventType.RUN_UPDATED):
            return
        data = event.data
        run_id, trigger, status = data.get("id"), data.get("trigger"), data.get("status")
        if not isinstance(run_id, int) or not isinstance(trigger, str) or trigger not in TRIGGERS:
            return
        with self._lock:
            if event.type == EventType.RUN_CREATED and _first(self._created, run_id):
                self.created.labels(trigger).inc()
            if status == RunStatus.RUNNING and _first(self._started, run_id):
                self.started.labels(trigger).inc()
            if status in FINAL:
                self._finished(run_id, trigger, status, data)

    def _finished(self, run_id: int, trigger: str, status: str, data: dict[str, Any]) -> None:
        counted = self._usage.get(run_id)
        if counted is None:
            self.finished.labels(trigger, status).inc()
            duration_ms = data.get("duration_ms")
            if isinstance(duration_ms, int | float):
                self.duration.labels(trigger, status).observe(duration_ms / 1000)
            counted = (0, 0, 0.0)
        usage = (
            max(counted[0], _number(data.get("input_tokens"))),
            max(counted[1], _number(data.get("output_tokens"))),
            max(counted[2], _number(data.get("cost_usd"))),
        )
        self.tokens.labels(trigger, "input").inc(usage[0] - counted[0])
        self.tokens.labels(trigger, "output").inc(usage[1] - counted[1])
        self.cost.labels(trigger).inc(usage[2] - counted[2])
        _remember(self._usage, run_id, usage)


def _first(seen: OrderedDict[int, None], run_id: int) -> bool:
    """Whether `run_id` is new to `seen` (and remember it, forgetting the oldest)."""
    if run_id in seen:
        return False
    _remember(seen, run_id, None)
    return True


def _remember(seen: OrderedDict[int, Any], run_id: int, value: Any) -> None:
    seen[run_id] = value
    seen.move_to_end(run_id)
    if len(seen) > _REMEMBERED:
        seen.popitem(last=False)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


class QueueCollector(Collector):
    """Runs waiting and executing now, and how long the oldest has waited: one grouped query
    on the indexed `status` column (only queued and running rows are read), at each scrape."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def describe(self) -> list[Metric]:
        return _families(None)

    def collect(self) -> list[Metric]:
        query = (
            select(Run.status, func.count(), func.min(Run.queued_at))
            .where(Run.status.in_((RunStatus.QUEUED, RunStatus.RUNNING)))
            .group_by(Run.status)
        )
        try:
            with self.database.transaction() as db:
                rows = {status: (count, oldest) for status, count, oldest in db.execute(query)}
        except SQLAlchemyError as exc:
            logger.warning("metrics: cannot read the run queue: %s", exc.__class__.__name__)
            return []
        queued, oldest = rows.get(RunStatus.QUEUED, (0, None))
        age = max(0.0, (clock.now() - oldest).total_seconds()) if oldest is not None else 0.0
        running = rows.get(RunStatus.RUNNING, (0, None))[0]
        return _families((queued, running, age))


def _families(values: tuple[float, float, float] | None) -> list[Metric]:
    scope = "Cluster-wide, read from the database at each scrape"
    families: list[Metric] = [
        GaugeMetricFamily("zerg_runs_queued", f"Runs waiting to execute. {scope}."),
        GaugeMetricFamily("zerg_runs_running", f"Runs executing now. {scope}."),
        GaugeMetricFamily(
            "zerg_oldest_queued_run_age_seconds",
            f"How long the oldest queued run has waited (0: none waits). {scope}.",
        ),
    ]
    if values is not None:
        for family, value in zip(families, values, strict=True):
            family.add_sample(family.name, {}, value)
    return families
