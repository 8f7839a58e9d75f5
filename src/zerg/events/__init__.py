"""The event bus and the event log: typed events with ids, published after the commit they
describe."""

from zerg.events.bus import AGENTS_TOPIC, Dropped, Event, EventBus, EventType, Subscription

__all__ = ["AGENTS_TOPIC", "Dropped", "Event", "EventBus", "EventType", "Subscription"]
