"""Events on the wire between processes: PostgreSQL NOTIFY payloads on one channel.

A stored event is NOTIFYed in the transaction that records it (`zerg.events.log.store`), so
the other processes get it when, and only if, that transaction commits, and in commit order;
a chat turn's events, and its stream (never stored), go through the relay's sender
(`zerg.events.postgres`), which keeps them in the order they were published. NOTIFY payloads
are limited to 8000 bytes: a larger event travels in several parts.
"""

import base64
import json
import uuid
from typing import Any

from zerg.events.bus import Event, EventType

CHANNEL = "zerg_events"
# Bytes of an event per NOTIFY (base64-encoded, so 4/3 of it on the wire, well under 8000).
_PART_BYTES = 5000
# The execution option naming the process whose connection sends (its own events come back
# to it; it skips them, having published them itself).
ORIGIN_OPTION = "zerg_event_origin"
# Every payload in one statement (the driver's parameters: the channel, then the payloads):
# a transaction's notifications arrive together, in the order given.
NOTIFY_ALL = "SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload"


def encode(event: Event, origin: str) -> list[str]:
    """The NOTIFY payloads that carry `event`: one, or its parts in order."""
    body = json.dumps(
        {
            "o": origin,
            "t": event.type.value,
            "d": event.data,
            "r": [event.id, event.owner_id, event.agent_id, event.thread_id, event.run_id],
            "s": [event.seq, event.id_before],
        }
    )
    raw = body.encode()
    if len(raw) <= _PART_BYTES:
        return [body]
    message = uuid.uuid4().hex
    chunks = [raw[i : i + _PART_BYTES] for i in range(0, len(raw), _PART_BYTES)]
    return [
        json.dumps(
            {"o": origin, "m": message, "i": i, "n": len(chunks), "p": base64.b64encode(c).decode()}
        )
        for i, c in enumerate(chunks)
    ]


class Reassembler:
    """Turns NOTIFY payloads back into (origin, event) pairs."""

    def __init__(self) -> None:
        self._parts: dict[str, list[bytes]] = {}

    def feed(self, payload: str) -> tuple[str, Event] | None:
        envelope: dict[str, Any] = json.loads(payload)
        if "m" in envelope:
            parts = self._parts.setdefault(envelope["m"], [])
            parts.append(base64.b64decode(envelope["p"]))
            if len(parts) < envelope["n"]:
                if len(self._parts) > 1000:  # parts of a sender that died mid-message
                    self._parts.pop(next(iter(self._parts)))
                return None
            envelope = json.loads(b"".join(self._parts.pop(envelope["m"])))
        event_id, owner_id, agent_id, thread_id, run_id = envelope["r"]
        seq, id_before = envelope["s"]
        event = Event(
            EventType(envelope["t"]),
            envelope["d"],
            id=event_id,
            owner_id=owner_id,
            agent_id=agent_id,
            thread_id=thread_id,
            run_id=run_id,
            seq=seq,
            id_before=id_before,
        )
        return envelope["o"], event
