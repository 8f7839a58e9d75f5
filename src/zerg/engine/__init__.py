"""The durable run engine (DBOS Transact) behind a small interface; nothing else imports DBOS."""

from zerg.engine.dbos_engine import RunEngine, engine_database_url

__all__ = ["RunEngine", "engine_database_url"]
