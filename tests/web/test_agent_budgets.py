"""The dashboard's budget fields over real HTTP: the editor's Budget section saves, shows and
refuses limits as the API does, shows today's usage, and the agents table says when an agent's
daily budget is spent."""

import re

import httpx

from tests.api.helpers import FrozenClock
from tests.web.test_agent_forms import AGENT_FORM, HTML, field_error, post_form
from zerg.db import Database
from zerg.models import Run

LIMITS = {
    "max_run_tokens": "5000",
    "max_run_cost_usd": "0.5",
    "max_day_tokens": "100",
    "max_day_cost_usd": "",
}


def spend(database: Database, agent_id: int, clock: FrozenClock, tokens: int) -> None:
    with database.session() as session:
        session.add(
            Run(
                agent_id=agent_id,
                trigger="manual",
                status="succeeded",
                queued_at=clock.now,
                input_tokens=tokens,
                output_tokens=0,
                total_tokens=tokens,
                cost_usd=0.25,
            )
        )
        session.commit()


def test_the_editor_saves_and_shows_the_budget(client: httpx.Client) -> None:
    created = post_form(client, "/agents/new", AGENT_FORM | LIMITS)

    assert created.status_code == 303, created.text
    agent_id = int(created.headers["location"].split("/")[2].split("?")[0])
    agent = client.get(f"/api/agents/{agent_id}").json()
    assert (agent["max_run_tokens"], agent["max_run_cost_usd"]) == (5000, 0.5)
    assert (agent["max_day_tokens"], agent["max_day_cost_usd"]) == (100, None)
    page = client.get(f"/agents/{agent_id}", headers=HTML)
    assert 'id="budget-heading">Budget</h2>' in page.text
    assert re.search(r'id="max_run_tokens"[^>]*value="5000"', page.text)
    assert re.search(r'id="max_run_cost_usd"[^>]*value="0.5"', page.text)
    assert re.search(r'id="max_day_cost_usd"[^>]*value=""', page.text)
    assert "0 tokens" in page.text and "budget is spent" not in page.text

    cleared = post_form(
        client,
        f"/agents/{agent_id}",
        AGENT_FORM | LIMITS | {"max_run_tokens": ""},
        page=f"/agents/{agent_id}",
    )
    assert cleared.status_code == 303, cleared.text
    assert client.get(f"/api/agents/{agent_id}").json()["max_run_tokens"] is None


def test_an_invalid_limit_shows_next_to_its_field(client: httpx.Client) -> None:
    typed = AGENT_FORM | LIMITS | {"max_run_tokens": "0", "max_day_cost_usd": "a lot"}

    page = post_form(client, "/agents/new", typed)

    assert page.status_code == 422
    assert "greater than or equal to 1" in field_error(page, "max_run_tokens")
    assert "number" in field_error(page, "max_day_cost_usd")
    assert 'value="a lot"' in page.text
    assert client.get("/api/agents").json()["items"] == []


def test_a_spent_day_shows_in_the_editor_and_the_agents_table(
    client: httpx.Client, database: Database, clock: FrozenClock
) -> None:
    created = post_form(client, "/agents/new", AGENT_FORM | LIMITS)
    agent_id = int(created.headers["location"].split("/")[2].split("?")[0])
    other = post_form(client, "/agents/new", AGENT_FORM | {"name": "Unlimited"})
    assert other.status_code == 303
    spend(database, agent_id, clock, 1234)

    editor = client.get(f"/agents/{agent_id}", headers=HTML)
    table = client.get("/agents-table", headers=HTML)

    assert "Today (2026-03-04 UTC): 1,234 tokens, $0.2500" in editor.text
    assert "the daily budget is spent" in editor.text
    rows = re.findall(r'<tr id="agent-(\d+)".*?</tr>', table.text, re.S)
    assert len(rows) == 2
    spent_row = re.search(rf'<tr id="agent-{agent_id}".*?</tr>', table.text, re.S)
    assert spent_row and "Daily budget spent" in spent_row[0]
    assert table.text.count("Daily budget spent") == 1
    clock.advance(days=1)
    assert "Daily budget spent" not in client.get("/agents-table", headers=HTML).text
