"""Webhook triggers: secrets, and verifying deliveries per Standard Webhooks or GitHub's scheme.

Standard Webhooks (https://www.standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` (several, space
separated), verified by the `standardwebhooks` library, deduplicated by the signed `webhook-id`.
GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, deduplicated by
`X-GitHub-Delivery` and, since that header is not signed, by the body's SHA-256 within
`REPLAY_WINDOW`: a captured delivery replayed under a new id answers with the first run.

A delivery is stored with its run, so its id must fit the idempotency key's column and its payload
must be something both databases store and give back: nested at most `MAX_PAYLOAD_DEPTH` deep,
without NUL characters, lone surrogates or NaN.
"""

import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from zerg import clock
from zerg.errors import InvalidInput, NotFound, Unauthorized
from zerg.models import Run, Trigger
from zerg.schemas.common import storable
from zerg.schemas.runs import RunRead
from zerg.services.ownership import scoped, visible_agent
from zerg.services.pagination import PageResult, paginate
from zerg.services.signing import new_whsec
from zerg.services.users import Actor

Scheme = Literal["standard", "github"]
MAX_BODY_BYTES = 256 * 1024
TIMESTAMP_TOLERANCE = timedelta(seconds=300)
ROTATION_GRACE = timedelta(hours=24)
# A GitHub body seen within this long is a replay, whatever its X-GitHub-Delivery says. GitHub
# redelivers under the same id; a body that repeats legitimately later starts a new run.
REPLAY_WINDOW = timedelta(hours=24)
# The idempotency key `webhook:{trigger_id}:{id}` must fit `runs.idempotency_key` (255).
MAX_DELIVERY_ID_LENGTH = 200
# Far more than real webhook payloads nest, far less than what breaks a parser or a database.
MAX_PAYLOAD_DEPTH = 32


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: its idempotency key, its payload and, for GitHub, the SHA-256 of its
    body (which recognises a replay under another delivery id)."""

    key: str
    payload: Any
    body_hash: str | None = None


def new_secret(scheme: str) -> str:
    """A fresh secret: Standard Webhooks' `whsec_<base64>` form, or hex for GitHub's UI."""
    if scheme == "github":
        return secrets.token_hex(32)
    return new_whsec()


def create_trigger(agent_id: int, scheme: Scheme, *, actor: Actor, session: Session) -> Trigger:
    visible_agent(agent_id, actor, session=session)
    trigger = Trigger(agent_id=agent_id, scheme=scheme, secret=new_secret(scheme))
    session.add(trigger)
    session.flush()
    return trigger


def get_trigger(trigger_id: int, *, actor: Actor, session: Session) -> Trigger:
    """Trigger `trigger_id` if the actor may see its agent; `NotFound` (the same as for a
    missing one) otherwise."""
    stmt = scoped(select(Trigger).where(Trigger.id == trigger_id), actor, Trigger.agent_id)
    return _found(session.scalar(stmt), trigger_id)


def trigger_for_delivery(public_id: str, *, session: Session) -> Trigger:
    """The trigger whose delivery URL ends in `public_id`, whoever owns it: a delivery acts as
    nobody, its signature (checked next, by `verify_delivery`) is what lets it in."""
    trigger = session.scalar(select(Trigger).where(Trigger.public_id == public_id))
    if trigger is None:
        # Not echoed: the id is what keeps the URL unguessable, and the sender knows it anyway.
        raise NotFound("no trigger has this delivery URL")
    return trigger


def _found(trigger: Trigger | None, trigger_id: int) -> Trigger:
    if trigger is None:
        raise NotFound(f"trigger {trigger_id} does not exist")
    return trigger


def list_triggers(
    agent_id: int, *, actor: Actor, session: Session, limit: int, after: str | None
) -> PageResult[Trigger]:
    visible_agent(agent_id, actor, session=session)
    stmt = select(Trigger).where(Trigger.agent_id == agent_id)
    return paginate(session, stmt, Trigger.id, limit=limit, after=after)


def delete_trigger(trigger_id: int, *, actor: Actor, session: Session) -> None:
    session.delete(get_trigger(trigger_id, actor=actor, session=session))
    session.flush()


def rotate_secret(trigger_id: int, *, actor: Actor, session: Session) -> Trigger:
    """A new secret; the old one keeps verifying deliveries for `ROTATION_GRACE`."""
    trigger = get_trigger(trigger_id, actor=actor, session=session)
    trigger.previous_secret = trigger.secret
    trigger.previous_secret_expires_at = clock.now() + ROTATION_GRACE
    trigger.secret = new_secret(trigger.scheme)
    session.flush()
    return trigger


def _valid_secrets(trigger: Trigger) -> list[str]:
    valid = [trigger.secret]
    expires = trigger.previous_secret_expires_at
    if trigger.previous_secret and expires is not None and expires > clock.now():
        valid.append(trigger.previous_secret)
    return valid


def _delivery(trigger: Trigger, delivery_id: str, body: bytes, body_hash: str | None) -> Delivery:
    """A verified delivery; refuses an id too long to store and a payload nested too deep."""
    if len(delivery_id) > MAX_DELIVERY_ID_LENGTH:
        raise InvalidInput(
            f"the delivery id is {len(delivery_id)} characters long; at most "
            f"{MAX_DELIVERY_ID_LENGTH} are accepted",
            code="delivery_id_too_long",
        )
    return Delivery(f"webhook:{trigger.id}:{delivery_id}", _payload(body), body_hash)


def _payload(body: bytes) -> Any:
    """The body's JSON, or its text when it is not JSON; refused when a database cannot store it."""
    text = body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except RecursionError:  # nested deeper than the parser goes
        raise _too_deep() from None
    except ValueError:
        payload = text
    if _deeper_than(payload, MAX_PAYLOAD_DEPTH):
        raise _too_deep()
    try:
        return storable(payload)
    except ValueError as exc:
        raise InvalidInput(f"the payload {exc}", code="invalid_payload") from None


def _deeper_than(value: Any, depth: int) -> bool:
    """Whether `value` nests more than `depth` arrays and objects (a scalar nests none)."""
    if isinstance(value, dict):
        value = list(value.values())
    elif not isinstance(value, list):
        return False
    return depth == 0 or any(_deeper_than(item, depth - 1) for item in value)


def _too_deep() -> InvalidInput:
    return InvalidInput(
        f"the payload nests arrays and objects more than {MAX_PAYLOAD_DEPTH} deep",
        code="payload_too_deep",
    )


def verify_delivery(trigger: Trigger, body: bytes, headers: Mapping[str, str]) -> Delivery:
    """Check a delivery's signature (in constant time) and timestamp; raise `Unauthorized`."""
    if trigger.scheme == "github":
        return _verify_github(trigger, body, headers)
    return _verify_standard(trigger, body, headers)


def _verify_standard(trigger: Trigger, body: bytes, headers: Mapping[str, str]) -> Delivery:
    delivery_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp", "")
    if not delivery_id or not headers.get("webhook-signature"):
        raise Unauthorized(
            "missing webhook-id or webhook-signature header (Standard Webhooks)",
            code="invalid_signature",
        )
    try:
        sent_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise Unauthorized(
            "webhook-timestamp must be the send time in Unix seconds", code="invalid_signature"
        ) from None
    if abs(clock.now() - sent_at) > TIMESTAMP_TOLERANCE:
        raise Unauthorized(
            f"webhook-timestamp {timestamp} is more than "
            f"{int(TIMESTAMP_TOLERANCE.total_seconds())} s from the server's clock; "
            "sign each delivery when you send it",
            code="stale_timestamp",
        )
    for secret in _valid_secrets(trigger):
        try:
            Webhook(secret).verify(body, dict(headers), json_parse=False)
        except (WebhookVerificationError, ValueError, binascii.Error):
            continue
        return _delivery(trigger, delivery_id, body, None)
    raise Unauthorized(
        "webhook-signature does not match the body signed with this trigger's secret",
        code="invalid_signature",
    )


def _verify_github(trigger: Trigger, body: bytes, headers: Mapping[str, str]) -> Delivery:
    signature = headers.get("x-hub-signature-256", "")
    if not signature.startswith("sha256="):
        raise Unauthorized(
            "missing X-Hub-Signature-256: sha256=<hex> header (GitHub webhooks)",
            code="invalid_signature",
        )
    given = signature.removeprefix("sha256=")
    for secret in _valid_secrets(trigger):
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            body_hash = hashlib.sha256(body).hexdigest()
            delivery_id = headers.get("x-github-delivery") or body_hash
            return _delivery(trigger, delivery_id, body, body_hash)
    raise Unauthorized(
        "X-Hub-Signature-256 does not match the body signed with this trigger's secret",
        code="invalid_signature",
    )


def run_for_delivery(trigger: Trigger, delivery: Delivery, *, session: Session) -> RunRead | None:
    """The run this delivery already started, if any: one with its key (a redelivery) or, for
    GitHub, a run of this trigger for the same body within `REPLAY_WINDOW` (a replay)."""
    run = session.scalar(select(Run).where(Run.idempotency_key == delivery.key))
    if run is None and delivery.body_hash is not None:
        run = session.scalar(
            select(Run)
            .where(
                Run.delivery_hash == delivery.body_hash,
                Run.agent_id == trigger.agent_id,
                Run.trigger == "webhook",
                Run.idempotency_key.startswith(f"webhook:{trigger.id}:", autoescape=True),
                Run.queued_at >= clock.now() - REPLAY_WINDOW,
            )
            .order_by(Run.id)
            .limit(1)
        )
    return RunRead.model_validate(run) if run is not None else None


def mark_fired(trigger: Trigger, *, session: Session) -> None:
    trigger.last_fired_at = clock.now()
    session.flush()
