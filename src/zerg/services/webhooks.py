"""Webhook triggers: secrets, and verifying deliveries per Standard Webhooks or GitHub's scheme.

Standard Webhooks (https://www.standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` (several, space
separated), verified by the `standardwebhooks` library. GitHub: `X-Hub-Signature-256:
sha256=<hex HMAC-SHA256 of the body>`, deduplicated by `X-GitHub-Delivery`.
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
from zerg.errors import NotFound, Unauthorized
from zerg.models import Run, Trigger
from zerg.schemas.runs import RunRead
from zerg.services.agents import get_agent
from zerg.services.pagination import PageResult, paginate
from zerg.services.signing import new_whsec

Scheme = Literal["standard", "github"]
MAX_BODY_BYTES = 256 * 1024
TIMESTAMP_TOLERANCE = timedelta(seconds=300)
ROTATION_GRACE = timedelta(hours=24)


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: its id (for deduplication) and its payload."""

    id: str
    payload: Any


def new_secret(scheme: str) -> str:
    """A fresh secret: Standard Webhooks' `whsec_<base64>` form, or hex for GitHub's UI."""
    if scheme == "github":
        return secrets.token_hex(32)
    return new_whsec()


def create_trigger(agent_id: int, scheme: Scheme, *, session: Session) -> Trigger:
    get_agent(agent_id, session=session)
    trigger = Trigger(agent_id=agent_id, scheme=scheme, secret=new_secret(scheme))
    session.add(trigger)
    session.flush()
    return trigger


def get_trigger(trigger_id: int, *, session: Session) -> Trigger:
    trigger = session.get(Trigger, trigger_id)
    if trigger is None:
        raise NotFound(f"trigger {trigger_id} does not exist")
    return trigger


def list_triggers(
    agent_id: int, *, session: Session, limit: int, after: str | None
) -> PageResult[Trigger]:
    get_agent(agent_id, session=session)
    stmt = select(Trigger).where(Trigger.agent_id == agent_id)
    return paginate(session, stmt, Trigger.id, limit=limit, after=after)


def delete_trigger(trigger_id: int, *, session: Session) -> None:
    session.delete(get_trigger(trigger_id, session=session))
    session.flush()


def rotate_secret(trigger_id: int, *, session: Session) -> Trigger:
    """A new secret; the old one keeps verifying deliveries for `ROTATION_GRACE`."""
    trigger = get_trigger(trigger_id, session=session)
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


def _payload(body: bytes) -> Any:
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


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
        return Delivery(id=delivery_id, payload=_payload(body))
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
            delivery_id = headers.get("x-github-delivery") or hashlib.sha256(body).hexdigest()
            return Delivery(id=delivery_id, payload=_payload(body))
    raise Unauthorized(
        "X-Hub-Signature-256 does not match the body signed with this trigger's secret",
        code="invalid_signature",
    )


def run_for_delivery(idempotency_key: str, *, session: Session) -> RunRead | None:
    """The run a delivery with this key already started, if any (a redelivery)."""
    run = session.scalar(select(Run).where(Run.idempotency_key == idempotency_key))
    return RunRead.model_validate(run) if run is not None else None


def mark_fired(trigger: Trigger, *, session: Session) -> None:
    trigger.last_fired_at = clock.now()
    session.flush()
