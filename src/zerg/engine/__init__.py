"""The durable run engine (DBOS Transact) behind a small interface; nothing else imports DBOS."""

from zerg.engine.dbos_engine import (
    EMBEDDED_EXECUTOR_ID,
    ENDED_STATUSES,
    EngineMode,
    RunEngine,
    engine_database_url,
)

__all__ = [
    "EMBEDDED_EXECUTOR_ID",
    "ENDED_STATUSES",
    "EngineMode",
    "RunEngine",
    "engine_database_url",
]
