"""The event bus: typed events published after the commit they describe."""

from zerg.events.bus import Event, EventBus, EventType, Subscription

__all__ = ["Event", "EventBus", "EventType", "Subscription"]
