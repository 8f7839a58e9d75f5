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
# a transaction's notifications arrive together, in the order given. (The array goes in
# binary, which needs no escaping of the JSON's quotes.)
NOTIFY_ALL = "SELECT pg_notify(%s, payload) FROM unnest(%b::text[]) AS payload"


def sender(origin: str) -> str:
    """How every payload sent by `origin` starts: a process skips its own unread."""
    return f'{{"o":{json.dumps(origin)},'


def up_to_id(origin: str) -> str:
    """A payload of `origin` up to its event's id: the transaction that stores the event
    learns the id there and NOTIFYs `up_to_id(...) || id || after_id(...)` (see
    `zerg.events.log.store`)."""
    return f'{sender(origin)}"r":['


def after_id(event: Event, data: str) -> str:
    """What follows the event's id in its payload; `data` is `event.data` as JSON."""
    return (
        f",{json.dumps([event.owner_id, event.agent_id, event.thread_id, event.run_id])[1:]}"
        f',"t":{json.dumps(event.type.value)}'
        f',"s":{json.dumps([event.seq, event.id_before])},"d":{data}}}'
    )


def fits(start: str, rest: str) -> bool:
    """Whether a payload of `start` (`up_to_id`), an id and `rest` (`after_id`) goes in one
    NOTIFY, whatever its id."""
    return len(start.encode()) + 20 + len(rest.encode()) <= _PART_BYTES


def encode(event: Event, origin: str) -> list[str]:
    """The NOTIFY payloads that carry `event`: one, or its parts in order."""
    data = json.dumps(event.data)
    body = f"{up_to_id(origin)}{json.dumps(event.id)}{after_id(event, data)}"
    raw = body.encode()
    if len(raw) <= _PART_BYTES:
        return [body]
    message = uuid.uuid4().hex
    chunks = [raw[i : i + _PART_BYTES] for i in range(0, len(raw), _PART_BYTES)]
    return [
        sender(origin)
        + json.dumps(
            {"m": message, "i": i, "n": len(chunks), "p": base64.b64encode(c).decode()},
            separators=(",", ":"),
        )[1:]
        for i, c in enumerate(chunks)
    ]


class Reassembler:
    """Turns NOTIFY payloads back into events."""

    def __init__(self) -> None:
        self._parts: dict[str, list[bytes]] = {}

    def feed(self, payload: str) -> Event | None:
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
        return Event(
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
