"""ORM tables only; importing this package registers every table on `Base.metadata`.

The `*_table` names are the same tables for SQLAlchemy Core statements (the run path).
"""

from zerg.models.agents import Agent, agents_table
from zerg.models.base import Base
from zerg.models.events import EventRow, events_table
from zerg.models.instance import Instance
from zerg.models.login_sessions import LoginSession
from zerg.models.runs import Run, runs_table
from zerg.models.threads import Message, Thread, messages_table, threads_table
from zerg.models.triggers import Trigger
from zerg.models.users import ApiToken, User
from zerg.models.workers import Worker

__all__ = [
    "Agent",
    "ApiToken",
    "Base",
    "EventRow",
    "Instance",
    "LoginSession",
    "Message",
    "Run",
    "Thread",
    "Trigger",
    "User",
    "Worker",
    "agents_table",
    "events_table",
    "messages_table",
    "runs_table",
    "threads_table",
]
