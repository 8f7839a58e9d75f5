"""The charts' aggregates: runs per UTC day by status, durations, tokens and cost, on each
backend, from runs inserted at known times and scoped to what the actor may see."""

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.api.helpers import FrozenClock, Rows
from zerg.db import Database
from zerg.errors import NotFound
from zerg.schemas.runs import RunStatus
from zerg.services import users
from zerg.services.stats import RunStats, run_stats
from zerg.services.users import Actor

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
TODAY = NOW.date()


@pytest.fixture
def rows(database: Database) -> Rows:
    return Rows(database)


def actor(database: Database, name: str, *, admin: bool) -> Actor:
    with database.session() as session:
        user = users.create_user(name, admin=admin, session=session)
        session.commit()
        return Actor(user_id=user.id, name=name, is_admin=admin)


def stats_of(database: Database, who: Actor, agent_id: int | None = None) -> RunStats:
    with database.session() as session:
        return run_stats(actor=who, session=session, agent_id=agent_id)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def by_day(stats: RunStats) -> dict[date, dict[RunStatus, int]]:
    return {d.day: {s: n for s, n in d.runs.items() if n} for d in stats.days if d.run_count}


def test_runs_are_counted_per_utc_day_by_status(
    database: Database, rows: Rows, clock: FrozenClock
) -> None:
    clock.now = NOW
    root = actor(database, "root", admin=True)
    agent = rows.agent()
    yesterday = TODAY - timedelta(days=1)
    # The edges of a UTC day: 00:00 belongs to it, 23:59:59.999 too, 24:00 to the next.
    rows.run(agent, status="succeeded", queued_at=at(yesterday, 0))
    rows.run(agent, status="succeeded", queued_at=at(yesterday, 23, 59) + timedelta(seconds=59))
    rows.run(agent, status="failed", queued_at=at(TODAY, 0))
    rows.runs(agent, 3, status="succeeded", queued_at=at(TODAY, 9))
    rows.run(agent, status="running", queued_at=at(TODAY, 14))
    # 14 days back is outside the window; 13 days back is its first day.
    rows.run(agent, status="succeeded", queued_at=at(TODAY - timedelta(days=14), 23))
    rows.run(agent, status="timed_out", queued_at=at(TODAY - timedelta(days=13), 0, 1))

    stats = stats_of(database, root)

    assert [d.day for d in stats.days] == [TODAY - timedelta(days=n) for n in range(13, -1, -1)]
    assert by_day(stats) == {
        TODAY - timedelta(days=13): {RunStatus.TIMED_OUT: 1},
        yesterday: {RunStatus.SUCCEEDED: 2},
        TODAY: {RunStatus.FAILED: 1, RunStatus.SUCCEEDED: 3, RunStatus.RUNNING: 1},
    }
    assert stats.run_count == 8
    assert stats.count(RunStatus.SUCCEEDED) == 5


def test_durations_tokens_and_cost_are_summed_per_day(
    database: Database, rows: Rows, clock: FrozenClock
) -> None:
    clock.now = NOW
    root = actor(database, "root", admin=True)
    agent = rows.agent()
    done = {"status": "succeeded", "queued_at": at(TODAY, 10)}
    rows.run(agent, **done, duration_ms=1000, input_tokens=10, output_tokens=5, total_tokens=15,
             cost_usd=0.25)  # fmt: skip
    rows.run(agent, **done, duration_ms=4000, input_tokens=100, output_tokens=20,
             total_tokens=120, cost_usd=0.5)  # fmt: skip
    # Not finished: no duration, no cost yet; it counts as a run but not in the averages.
    rows.run(agent, status="running", queued_at=at(TODAY, 11), input_tokens=1, total_tokens=1)

    today = stats_of(database, root).days[-1]

    assert today.day == TODAY
    assert today.avg_duration_ms == pytest.approx(2500)
    assert today.max_duration_ms == 4000
    assert (today.input_tokens, today.output_tokens, today.total_tokens) == (111, 25, 136)
    assert today.cost_usd == pytest.approx(0.75)
    empty = stats_of(database, root).days[0]
    assert (empty.run_count, empty.avg_duration_ms, empty.max_duration_ms) == (0, None, None)
    assert (empty.total_tokens, empty.cost_usd) == (0, 0.0)


def test_an_actor_sees_only_their_agents_runs(
    database: Database, rows: Rows, clock: FrozenClock
) -> None:
    clock.now = NOW
    root = actor(database, "root", admin=True)
    ada = actor(database, "ada", admin=False)
    bob = actor(database, "bob", admin=False)
    adas, bobs = rows.agent(owner_id=ada.user_id), rows.agent(owner_id=bob.user_id)
    rows.runs(adas, 2, status="succeeded", queued_at=at(TODAY, 8), total_tokens=7)
    rows.run(bobs, status="failed", queued_at=at(TODAY, 8), total_tokens=1000)

    assert by_day(stats_of(database, ada)) == {TODAY: {RunStatus.SUCCEEDED: 2}}
    assert stats_of(database, ada).total_tokens == 14
    assert by_day(stats_of(database, bob)) == {TODAY: {RunStatus.FAILED: 1}}
    assert stats_of(database, root).run_count == 3
    one_agent = stats_of(database, root, agent_id=bobs)
    assert one_agent.agent is not None and one_agent.agent.id == bobs
    assert by_day(one_agent) == {TODAY: {RunStatus.FAILED: 1}}
    with pytest.raises(NotFound):
        stats_of(database, ada, agent_id=bobs)
