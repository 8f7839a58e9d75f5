"""The database: engine and sessions (`engine.py`), column types, and Alembic migrations."""

from zerg.db.engine import Database

__all__ = ["Database"]
