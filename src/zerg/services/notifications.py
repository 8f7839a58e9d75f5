"""Run notifications: a finished run's summary POSTed to its agent's `notify_url`, signed per
Standard Webhooks with the agent's own secret, through the same guard as the http_get tool.

The run engine delivers it durably and retries with backoff; each attempt raises on failure.
The `webhook-id` is the same on every attempt, so a receiver can drop duplicates.

An attempt has one deadline for everything (DNS, connect, upload, the reply's status line and
headers) and never reads the reply's body: only its status matters, and a receiver must not be
able to hold a worker or fill its memory. A `notify_url` may carry credentials (userinfo, a token
in the query), so logs and errors name it only through `redact_url`.
"""

import asyncio
import base64
import json
import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks import Webhook

from zerg.agents.tools import HttpGetPolicy
from zerg.agents.tools.ssrf import pinned_request, vet_url
from zerg.db import Database
from zerg.models import Agent, Run
from zerg.schemas.runs import RunRead

logger = logging.getLogger(__name__)

EVENT_TYPE = "run.finished"


class DeliveryFailed(Exception):
    """The receiver did not accept the notification (the engine retries)."""


def summary(run: Run, agent: Agent) -> dict[str, object]:
    return {
        "type": EVENT_TYPE,
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {
            "agent": {"id": agent.id, "name": agent.name},
            "run": RunRead.model_validate(run).model_dump(mode="json"),
        },
    }


async def deliver(database: Database, run_id: int, policy: HttpGetPolicy) -> None:
    """One attempt to notify of run `run_id`; a no-op when its agent has no `notify_url`."""
    with database.session() as session:
        run = session.get(Run, run_id)
        agent = session.get(Agent, run.agent_id) if run is not None else None
        if run is None or agent is None or not agent.notify_url or not agent.notify_secret:
            return
        body = json.dumps(summary(run, agent))
        url, secret = agent.notify_url, agent.notify_secret
    message_id = f"run-{run_id}-finished"
    sent_at = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "user-agent": "Zerg",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, sent_at, body),
    }
    try:
        status = await _post(url, headers, body.encode(), policy)
    except Exception as exc:  # refused by the guard, unreachable, timed out
        reason = _scrub(_describe(exc, policy), url)
        logger.warning("run %s: notification to %s failed: %s", run_id, redact_url(url), reason)
        raise DeliveryFailed(reason) from None
    if not 200 <= status < 300:
        logger.warning("run %s: %s answered %s", run_id, redact_url(url), status)
        raise DeliveryFailed(f"{redact_url(url)} answered {status}")


async def _post(url: str, headers: dict[str, str], content: bytes, policy: HttpGetPolicy) -> int:
    """The status the receiver answers, within `policy.timeout_s` for the whole attempt.

    Sent by the transport itself, not a client: httpx's client logs every request's full URL.
    """
    async with asyncio.timeout(policy.timeout_s):
        target = httpx.URL(url)
        address = await vet_url(target, policy.networks)
        if target.userinfo:  # what a client would do with it
            headers = {**headers, "authorization": _basic_auth(target)}
        request = pinned_request(
            "POST", target, address, policy.timeout_s, headers=headers, content=content
        )
        async with httpx.AsyncHTTPTransport(verify=policy.ssl_context or True) as transport:
            response = await transport.handle_async_request(request)
            await response.aclose()  # unread: the connection is dropped, not drained
            return response.status_code


def _basic_auth(url: httpx.URL) -> str:
    credentials = f"{url.username}:{url.password}".encode()
    return f"Basic {base64.b64encode(credentials).decode('ascii')}"


def _describe(exc: Exception, policy: HttpGetPolicy) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {policy.timeout_s:g} s"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def redact_url(url: str) -> str:
    """`url` fit for a log line: its userinfo, query and fragment (where credentials and tokens
    travel) replaced by `***`; scheme, host, port and path kept."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "<invalid URL>"
    netloc = f"***@{host}" if "@" in parts.netloc else host
    query = "***" if parts.query else ""
    fragment = "***" if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _scrub(message: str, url: str) -> str:
    """`message` with `url` redacted wherever it appears, also as httpx spells it; a message that
    still shows a secret part of the URL is cut to its first word (the error's type)."""
    for spelling in _spellings(url):
        message = message.replace(spelling, redact_url(url))
    if any(part in message for part in _secret_parts(url)):
        return message.split(":", 1)[0]
    return message


def _spellings(url: str) -> list[str]:
    try:
        return [url, str(httpx.URL(url))]
    except httpx.InvalidURL:
        return [url]


def _secret_parts(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    candidates = (parts.netloc.rpartition("@")[0], parts.query, parts.fragment)
    return [part for part in candidates if part]
