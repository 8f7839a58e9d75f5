"""The run history and the run page in a browser: filters, paging, new runs appearing live,
a run's timings, usage and error, a run followed live to its end, and another user's run."""

import re
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import Pages, Site, openai_config, shoot, sign_in
from tests.support.openai_server import FakeOpenAI, Text, Usage
from tests.support.waiting import wait_for


def api(page: Page, method: str, path: str, body: object = None) -> Any:
    """The API called from the page (its session cookie and CSRF token); the answer's data."""
    result = page.evaluate(
        "([method, path, body]) => Zerg.api(method, path, body ?? undefined)", [method, path, body]
    )
    assert result["ok"], result
    return result["data"]


def agent(page: Page, name: str, model: str = "scripted:demo", **fields: object) -> int:
    body = {"name": name, "model": model, "task_instructions": "6 * 7?", "tools": ["calculator"]}
    agent_id: int = api(page, "POST", "/api/agents", body | fields)["id"]
    return agent_id


def finished_run(page: Page, agent_id: int) -> dict[str, Any]:
    run: dict[str, Any] = api(page, "POST", f"/api/agents/{agent_id}/task?wait=true")
    assert run["status"] in ("succeeded", "failed"), run
    return run


def rows(page: Page) -> Locator:
    return page.locator("#run-rows tr")


def run_ids(page: Page, *ids: int) -> None:
    """Wait until the history lists exactly these runs, in this order."""
    expect(rows(page).locator("td[data-label=Run]")).to_have_text([f"#{i}" for i in ids])


def test_the_history_filters_by_status_agent_trigger_and_time(site: Site, alice: Page) -> None:
    calc, broken = agent(alice, "Calculator"), agent(alice, "Broken", "scripted:error")
    first, second = finished_run(alice, calc)["id"], finished_run(alice, calc)["id"]
    failed = finished_run(alice, broken)
    assert failed["status"] == "failed"
    thread = api(alice, "POST", "/api/threads", {"agent_id": calc})
    chat = api(alice, "POST", f"/api/threads/{thread['id']}/messages", {"content": "hi"})["id"]

    alice.goto("/runs")
    run_ids(alice, chat, failed["id"], second, first)
    failed_row = alice.locator(f"#run-{failed['id']}")
    expect(failed_row.locator("td[data-label=Agent]")).to_have_text("Broken")
    expect(failed_row.locator("td[data-label=Trigger]")).to_have_text("manual")
    expect(failed_row.locator(".badge.failed")).to_have_text("failed")
    expect(failed_row.locator("td[data-label=Queued]")).to_contain_text(" UTC")
    shoot(alice, "runs")

    alice.get_by_label("Status").select_option("failed")
    alice.get_by_role("button", name="Filter").click()
    expect(alice).to_have_url(re.compile(r"status=failed"))
    run_ids(alice, failed["id"])

    alice.get_by_label("Status").select_option("")
    alice.get_by_label("Agent").select_option(label="Calculator")
    alice.get_by_role("button", name="Filter").click()
    run_ids(alice, chat, second, first)

    alice.get_by_label("Trigger").select_option("chat")
    alice.get_by_role("button", name="Filter").click()
    run_ids(alice, chat)
    expect(alice.get_by_label("Agent")).to_have_value(str(calc))

    alice.goto("/runs")
    alice.get_by_label("From (UTC)").fill("2000-01-01T00:00")
    alice.get_by_label("Until (UTC)").fill("2000-01-02T00:00")
    alice.get_by_role("button", name="Filter").click()
    expect(alice.locator("#no-runs")).to_have_text("No runs match these filters.")
    expect(rows(alice)).to_have_count(0)
    # From then on, every run counts again.
    alice.get_by_label("Until (UTC)").fill("")
    alice.get_by_role("button", name="Filter").click()
    expect(rows(alice)).to_have_count(4)


def test_a_filter_that_makes_no_sense_is_said_on_the_page(
    site: Site, pages: Pages, alice: Page
) -> None:
    pages.errors_of(alice).expect("status of 422")
    for query, said in [
        ("status=finished", "status 'finished' is not one of queued, running"),
        ("trigger=cron", "trigger 'cron' is not one of manual"),
        ("since=yesterday", "since 'yesterday' is not a date and time"),
        ("since=2026-11-30T10:00&until=2026-11-30T09:00", "'from' must be before 'until'"),
        ("after=not-a-cursor", "'after' is not a cursor this server issued"),
        ("agent_id=-1", "agent '-1' is not an agent id"),
        ("limit=100000", "limit '100000' must be 1 to 200"),
    ]:
        response = alice.goto(f"/runs?{query}")
        assert response is not None and response.status == 422, query
        expect(alice.get_by_role("alert")).to_contain_text(said)
        expect(alice.get_by_role("button", name="Filter")).to_be_visible()


def test_older_runs_are_a_page_away_and_keep_the_filters(site: Site, alice: Page) -> None:
    calc = agent(alice, "Calculator")
    ids = [finished_run(alice, calc)["id"] for _ in range(5)]
    finished_run(alice, agent(alice, "Broken", "scripted:error"))

    alice.goto("/runs?status=succeeded&limit=2")
    run_ids(alice, ids[4], ids[3])
    alice.get_by_role("link", name="Older runs").click()
    run_ids(alice, ids[2], ids[1])
    expect(alice).to_have_url(re.compile(r"status=succeeded"))
    alice.get_by_role("link", name="Older runs").click()
    run_ids(alice, ids[0])
    expect(alice.get_by_role("link", name="Older runs")).to_have_count(0)
    alice.get_by_role("link", name="Newest runs").click()
    run_ids(alice, ids[4], ids[3])


def test_a_new_run_appears_live(site: Site, pages: Pages, alice: Page) -> None:
    calc = agent(alice, "Calculator")
    first = finished_run(alice, calc)["id"]
    alice.goto("/runs")
    run_ids(alice, first)
    alice.evaluate("window.notReloaded = true")

    other = pages.new()
    sign_in(other, "alice")
    started = api(other, "POST", f"/api/agents/{calc}/task")["id"]

    run_ids(alice, started, first)
    expect(alice.locator(f"#run-{started} .badge")).to_have_text("succeeded")
    assert alice.evaluate("window.notReloaded") is True


def test_the_run_page_shows_timings_usage_and_the_thread(site: Site, alice: Page) -> None:
    calc = agent(alice, "Calculator")
    run = finished_run(alice, calc)
    assert run["status"] == "succeeded" and run["total_tokens"] > 0

    alice.goto(f"/runs/{run['id']}")

    expect(alice.get_by_role("heading", name=f"Run #{run['id']}")).to_be_visible()
    facts = fact_values(alice)
    assert facts["Status"] == "succeeded"
    assert facts["Agent"] == "Calculator"
    assert facts["Trigger"] == "manual"
    for name in ("Queued", "Started", "Finished"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", facts[name]), facts
    assert facts["Queued"] == when(run["queued_at"])
    assert facts["Finished"] == when(run["finished_at"])
    assert re.fullmatch(r"\d+ ms|\d+\.\d s", facts["Duration"]), facts
    assert facts["Input tokens"] == str(run["input_tokens"])
    assert facts["Output tokens"] == str(run["output_tokens"])
    assert facts["Total tokens"] == str(run["total_tokens"])
    assert facts["Cost"] == "$0.0000"
    expect(alice.locator(".run-error")).to_have_count(0)
    expect(alice.get_by_role("link", name="Calculator", exact=True)).to_have_attribute(
        "href", f"/agents/{calc}"
    )
    thread_link = alice.get_by_role("link", name="Open the thread")
    expect(thread_link).to_have_attribute("href", f"/threads/{run['thread_id']}")
    shoot(alice, "run")


def test_a_failed_run_shows_its_error(site: Site, alice: Page) -> None:
    run = finished_run(alice, agent(alice, "Broken", "scripted:error"))
    assert run["status"] == "failed" and run["error"]

    alice.goto(f"/runs/{run['id']}")

    assert fact_values(alice)["Status"] == "failed"
    expect(alice.locator(".run-error")).to_have_text(run["error"])
    expect(alice.locator(".run-error")).to_contain_text("scripted:error always fails")
    shoot(alice, "run-failed")


def test_the_run_page_follows_its_run_to_the_end(
    site: Site, alice: Page, openai_server: FakeOpenAI
) -> None:
    openai_server.reply_hang(then=Text("done", Usage(prompt_tokens=1200, completion_tokens=300)))
    hanger = agent(alice, "Hanger", "openai:gpt-4o-mini", config=openai_config(openai_server))
    hanger_run = api(alice, "POST", f"/api/agents/{hanger}/task")["id"]

    alice.goto(f"/runs/{hanger_run}")
    expect(alice.locator("#run-status")).to_have_text("running")
    assert fact_values(alice)["Finished"] == "—"
    wait_for(lambda: openai_server.requests, "the model call to arrive")
    openai_server.release()

    expect(alice.locator("#run-status")).to_have_text("succeeded")
    # Reloaded on its final status: the totals are there.
    expect(alice.locator("dd", has_text="1500")).to_be_visible()
    run = api(alice, "GET", f"/api/runs/{hanger_run}")
    assert run["cost_usd"] > 0
    facts = fact_values(alice)
    assert (facts["Input tokens"], facts["Output tokens"]) == ("1200", "300")
    assert facts["Cost"] == f"${run['cost_usd']:.4f}"


def test_another_users_run_is_not_found(site: Site, pages: Pages, alice: Page) -> None:
    calc = agent(alice, "Alice's agent")
    run = finished_run(alice, calc)["id"]
    bob = pages.new()
    sign_in(bob, "bob")
    pages.errors_of(bob).expect("status of 404")

    response = bob.goto(f"/runs/{run}")
    assert response is not None and response.status == 404
    expect(bob.get_by_role("heading", name="Not found")).to_be_visible()
    expect(bob.get_by_role("alert")).to_have_text(f"run {run} does not exist")
    expect(bob.get_by_text("Alice's agent")).to_have_count(0)

    bob.goto(f"/runs?agent_id={calc}")
    expect(bob.locator("#no-runs")).to_be_visible()
    expect(bob.get_by_role("option", name="Alice's agent")).to_have_count(0)
    bob.goto("/runs")
    expect(rows(bob)).to_have_count(0)
    response = bob.goto("/runs/not-a-run")
    assert response is not None and response.status == 404


def fact_values(page: Page) -> dict[str, str]:
    """The run page's facts, by their names."""
    facts = page.locator(".facts > div")
    names = facts.locator("dt").all_inner_texts()
    values = facts.locator("dd").all_inner_texts()
    return {name: value.strip() for name, value in zip(names, values, strict=True)}


def when(iso: str) -> str:
    """An API time as the page shows it."""
    return re.sub(r"\.\d+", "", iso.replace("T", " ")).replace("Z", " UTC")
