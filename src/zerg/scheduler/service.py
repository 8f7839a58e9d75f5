"""SchedulerService: fires agents' cron schedules, exactly once however many processes run it.

Every process that executes runs also runs this loop. Each agent's `next_run_at` is the
schedule's cursor: a process claims a due fire by moving the cursor forward with a
compare-and-set UPDATE, and the run it starts carries the idempotency key
`cron:{agent_id}:{fire_time}`, so a fire can never start two runs.
"""

import asyncio
import logging
from datetime import datetime, timedelta

from pydantic_core import to_jsonable_python
from sqlalchemy import select, update

from zerg import clock
from zerg.db import Database
from zerg.errors import BudgetExceeded, Conflict, TooMany, ZergError
from zerg.events import EventType
from zerg.events.log import record_in_session
from zerg.models import Agent
from zerg.scheduler.cron import CronError, due_between, last_fire_before, next_fire_time
from zerg.services.task_runs import TaskRuns

logger = logging.getLogger(__name__)

# A fire this late counts as missed (the process was down), not merely a slow tick.
MISSED_AFTER_S = 60


def fire_key(agent_id: int, fire_time: datetime) -> str:
    return f"cron:{agent_id}:{fire_time.isoformat()}"


class SchedulerService:
    def __init__(self, database: Database, task_runs: TaskRuns, *, interval_s: float) -> None:
        self.database = database
        self.task_runs = task_runs
        self.interval_s = interval_s
        self.fired = 0  # fires this process claimed and triggered a run for
        self.skipped = 0  # fires not run because the agent was busy
        self.budget_skipped = 0  # fires not run because the agent's daily budget was spent
        self.missed = 0  # stretches of fires missed while no scheduler ran (each logged)

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            try:
                await self.tick()
            except Exception:
                logger.exception("scheduler tick failed")
            await asyncio.sleep(self.interval_s)

    async def tick(self) -> list[str]:
        """Fire what is due now; returns the keys of the fires this process claimed."""
        now = clock.now()
        with self.database.session() as session:
            due = session.execute(
                select(
                    Agent.id, Agent.schedule, Agent.timezone, Agent.next_run_at, Agent.missed_fires
                ).where(
                    Agent.run_on_schedule.is_(True),
                    Agent.schedule.is_not(None),
                    Agent.next_run_at <= now,
                )
            ).all()
            session.commit()
        claimed = []
        for agent_id, schedule, timezone, cursor, missed_fires in due:
            if schedule is None or cursor is None:
                continue  # filtered out by the query; here for the type checker
            try:
                fires = self._claim(agent_id, schedule, timezone, cursor, missed_fires, now)
            except CronError as exc:
                self._stop(agent_id, cursor, exc)
                continue
            except Exception:  # one agent's trouble must not hold up the others' fires
                logger.exception("agent %s: cannot claim its due fires", agent_id)
                continue
            for fire in fires:
                claimed.append(await self._fire(agent_id, fire))
        return claimed

    def _claim(
        self,
        agent_id: int,
        schedule: str,
        timezone: str,
        cursor: datetime,
        missed_fires: str,
        now: datetime,
    ) -> list[datetime]:
        """Move the agent's cursor past `now`; the process whose UPDATE wins fires.

        Every fire still on time runs; of those missed while nothing was running, the policy
        keeps the latest (`run_once`) or none (`skip`). Only the on-time window is walked;
        the latest missed fire is found directly, so a long downtime costs no more work than
        a short one.
        """
        on_time_from = now - timedelta(seconds=MISSED_AFTER_S)
        latest_missed = None
        if cursor < on_time_from:
            # The cursor is itself a fire: nothing before it is ever fired (again).
            latest_missed = max(cursor, last_fire_before(schedule, timezone, on_time_from))
            on_time = due_between(schedule, timezone, latest_missed, now)
        else:
            on_time = [cursor, *due_between(schedule, timezone, cursor, now)]
        if not self._move_cursor(agent_id, cursor, next_fire_time(schedule, timezone, now)):
            return []  # another process claimed these fires
        if latest_missed is None:
            return on_time
        self.missed += 1
        logger.info(
            "agent %s: fires from %s to %s were missed while no scheduler ran; %s "
            "(missed_fires=%s)",
            agent_id,
            cursor.isoformat(),
            latest_missed.isoformat(),
            "running the latest" if missed_fires == "run_once" else "skipping them",
            missed_fires,
        )
        return [latest_missed, *on_time] if missed_fires == "run_once" else on_time

    def _move_cursor(self, agent_id: int, cursor: datetime, to: datetime | None) -> bool:
        """Compare-and-set of the agent's cursor; False when another process moved it first.
        A move is announced as `agent_updated` with the new `next_run_at`."""
        with self.database.session() as session:
            moved = session.execute(
                update(Agent)
                .where(Agent.id == agent_id, Agent.next_run_at == cursor)
                .values(next_run_at=to)
                .returning(Agent.owner_id)
                .execution_options(synchronize_session=False)
            ).one_or_none()
            if moved is not None:
                data = {"id": agent_id, "next_run_at": to_jsonable_python(to)}
                record_in_session(
                    session,
                    EventType.AGENT_UPDATED,
                    data,
                    owner_id=moved.owner_id,
                    agent_id=agent_id,
                )
            session.commit()
        return moved is not None

    def _stop(self, agent_id: int, cursor: datetime, exc: CronError) -> None:
        """An agent whose stored schedule cannot fire stops being due (until its schedule is
        changed), instead of failing every tick."""
        if self._move_cursor(agent_id, cursor, None):
            logger.warning("agent %s: schedule stopped: %s", agent_id, exc)

    async def _fire(self, agent_id: int, fire: datetime) -> str:
        key = fire_key(agent_id, fire)
        self.fired += 1
        try:
            await self.task_runs.trigger(agent_id, trigger="schedule", idempotency_key=key)
        except BudgetExceeded as exc:  # the fire is claimed all the same: never run later
            self.budget_skipped += 1
            logger.info(
                "agent %s: skipped fire %s, budget spent: %s",
                agent_id,
                fire.isoformat(),
                exc.detail,
            )
        except (Conflict, TooMany) as exc:  # busy and rejects, or its queue is full: skipped
            self.skipped += 1
            logger.info("agent %s: skipped fire %s: %s", agent_id, fire.isoformat(), exc.detail)
        except ZergError as exc:
            logger.warning(
                "agent %s: fire %s not started: %s", agent_id, fire.isoformat(), exc.detail
            )
        return key
