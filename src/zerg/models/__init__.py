"""ORM tables only; importing this package registers every table on `Base.metadata`."""

from zerg.models.agents import Agent
from zerg.models.base import Base
from zerg.models.runs import Run
from zerg.models.threads import Message, Thread
from zerg.models.triggers import Trigger
from zerg.models.workers import Worker

__all__ = ["Agent", "Base", "Message", "Run", "Thread", "Trigger", "Worker"]
