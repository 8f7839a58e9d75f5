"""Run notifications: a finished run's summary POSTed to its agent's `notify_url`, signed per
Standard Webhooks with the agent's own secret, through the same guard as the http_get tool.

The run engine delivers it durably and retries with backoff; each attempt raises on failure.
The `webhook-id` is the same on every attempt, so a receiver can drop duplicates.
"""

import json
import logging
from datetime import UTC, datetime

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
    target = httpx.URL(url)
    try:
        address = await vet_url(target, policy.networks)
        request = pinned_request(
            "POST", target, address, policy.timeout_s, headers=headers, content=body.encode()
        )
        transport = httpx.AsyncHTTPTransport(verify=policy.ssl_context or True)
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            response = await client.send(request)
    except Exception as exc:  # refused by the guard, unreachable, timed out
        logger.warning("run %s: notification to %s failed: %s", run_id, url, exc)
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
    if not response.is_success:
        logger.warning("run %s: %s answered %s", run_id, url, response.status_code)
        raise DeliveryFailed(f"{url} answered {response.status_code}")
