"""SchedulerService: fires agents' cron schedules, exactly once however many processes run it.

Every process that executes runs also runs this loop. Each agent's `next_run_at` is the
schedule's cursor: a process claims a due fire by moving the cursor forward with a
compare-and-set UPDATE, and the run it starts carries the idempotency key
`cron:{agent_id}:{fire_time}`, so a fire can never start two runs.
"""

import asyncio
import logging
from datetime import datetime

from sqlalchemy import select, update

from zerg import clock
from zerg.db import Database
from zerg.errors import Conflict, ZergError
from zerg.models import Agent
from zerg.scheduler.cron import due_between, next_fire_time
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
        self.skipped = 0  # fires not run: missed while down, or the agent was busy

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
            for fire in self._claim(agent_id, schedule, timezone, cursor, missed_fires, now):
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
        keeps the latest (`run_once`) or none (`skip`).
        """
        fires = [cursor, *due_between(schedule, timezone, cursor, now)]
        missed = [f for f in fires if (now - f).total_seconds() > MISSED_AFTER_S]
        chosen = [f for f in fires if f not in missed]
        if missed and missed_fires == "run_once":
            chosen.insert(0, missed[-1])
        with self.database.session() as session:
            moved = session.execute(
                update(Agent)
                .where(Agent.id == agent_id, Agent.next_run_at == cursor)
                .values(next_run_at=next_fire_time(schedule, timezone, now))
                .execution_options(synchronize_session=False)
            )
            session.commit()
        if getattr(moved, "rowcount", 0) != 1:
            return []  # another process claimed these fires
        skipped = [f for f in fires if f not in chosen]
        if skipped:
            self.skipped += len(skipped)
            logger.info(
                "agent %s: skipped %d missed fire(s) (missed_fires=%s), first %s",
                agent_id,
                len(skipped),
                missed_fires,
                skipped[0].isoformat(),
            )
        return chosen

    async def _fire(self, agent_id: int, fire: datetime) -> str:
        key = fire_key(agent_id, fire)
        try:
            await self.task_runs.trigger(agent_id, trigger="schedule", idempotency_key=key)
        except Conflict as exc:  # the agent is busy and rejects: a skipped fire, not an error
            self.skipped += 1
            logger.info("agent %s: skipped fire %s: %s", agent_id, fire.isoformat(), exc.detail)
        except ZergError as exc:
            logger.warning(
                "agent %s: fire %s not started: %s", agent_id, fire.isoformat(), exc.detail
            )
        return key
