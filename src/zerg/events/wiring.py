"""A process's event bus, wired to its database: events recorded through an ORM session are
published when it commits, and on PostgreSQL the bus spans every process on the database."""

from datetime import datetime

from zerg.db import Database
from zerg.events.bus import Event, EventBus
from zerg.events.log import events_since, publish_on_commit
from zerg.events.postgres import PostgresRelay
from zerg.events.wire import ORIGIN_OPTION
from zerg.settings import Settings


def connect_bus(settings: Settings, database: Database) -> tuple[EventBus, PostgresRelay | None]:
    """The bus, and on PostgreSQL its relay (start it, and stop it at the end)."""
    bus = EventBus(buffer=settings.event_buffer)
    publish_on_commit(database.sessionmaker, bus)
    if settings.is_sqlite:
        return bus, None

    def catch_up(since: datetime) -> list[Event]:
        with database.transaction() as db:
            return list(events_since(db, since))

    relay = PostgresRelay(bus, settings.resolved_database_url, catch_up=catch_up)
    # The events this process stores come back to it from PostgreSQL: named, it skips them.
    database.engine.update_execution_options(**{ORIGIN_OPTION: relay.origin})
    return bus, relay
