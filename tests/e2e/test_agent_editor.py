"""The agent editor in a real browser: errors by their fields, the schedule preview as you type,
editing and deleting, and webhook triggers whose secret is shown once and whose URL fires."""

import json
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Page, expect

from tests.api.test_webhooks import standard_headers
from tests.e2e.conftest import Pages, Site, shoot
from tests.support.waiting import wait_for
from zerg.scheduler.cron import next_fire_times


def fires_shown(expression: str, timezone: str) -> list[str]:
    """The next 5 fires as the editor shows them."""
    times = next_fire_times(expression, timezone, datetime.now(UTC), 5)
    return [t.astimezone(ZoneInfo(timezone)).strftime("%a %Y-%m-%d %H:%M %Z") for t in times]


def make_agent(page: Page, **fields: Any) -> dict[str, Any]:
    body = {"name": "Hook agent", "model": "scripted:demo", "tools": ["calculator"], **fields}
    result = page.evaluate("body => Zerg.api('POST', '/api/agents', body)", body)
    assert result["ok"], result
    agent: dict[str, Any] = result["data"]
    return agent


def test_a_new_agent_shows_errors_by_their_fields_then_saves(
    site: Site, pages: Pages, alice: Page
) -> None:
    page = alice
    pages.errors_of(page).expect("status of 422")  # the preview's and the form's refusals
    page.goto("/agents/new")
    expect(page.get_by_label("Model", exact=True)).to_have_value("scripted:demo")
    expect(page.get_by_label("Model", exact=True)).to_have_accessible_description(
        re.compile("Configured providers: scripted")
    )
    page.get_by_label("Task instructions").fill("Work out 6 * 7 with the calculator.")
    page.get_by_label("calculator").check()
    page.get_by_label("Concurrency").select_option("queue")
    page.get_by_label("Schedule (cron)").fill("0 9 * * 1-5")
    expect(page.locator("#fire-times li")).to_have_count(5)
    shoot(page, "agent-new")

    page.get_by_label("Schedule (cron)").fill("0 9 * *")
    page.get_by_role("button", name="Create agent").click()

    name = page.get_by_label("Name", exact=True)
    schedule = page.get_by_label("Schedule (cron)")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_have_accessible_description("Required.")
    expect(schedule).to_have_attribute("aria-invalid", "true")
    expect(schedule).to_have_accessible_description(re.compile("not a valid cron expression"))
    expect(page.get_by_role("alert")).to_contain_text("2 things to fix")
    expect(schedule).to_have_value("0 9 * *")
    expect(page.get_by_label("Task instructions")).to_have_value(
        "Work out 6 * 7 with the calculator."
    )
    expect(page.get_by_label("calculator")).to_be_checked()
    expect(page.get_by_label("Concurrency")).to_have_value("queue")
    expect(page.get_by_label("Time zone")).not_to_have_attribute("aria-invalid", "true")
    shoot(page, "agent-new-errors")

    name.fill("Morning report")
    schedule.fill("0 9 * * *")
    page.get_by_role("button", name="Create agent").click()

    expect(page).to_have_url(re.compile(r"/agents/\d+$"))
    expect(page.get_by_role("status").filter(has_text="Agent created.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Morning report")
    expect(page.get_by_label("Schedule (cron)")).to_have_value("0 9 * * *")
    expect(page.get_by_label("Concurrency")).to_have_value("queue")
    page.goto("/")
    expect(page.get_by_role("link", name="Morning report")).to_be_visible()


def test_the_next_fires_follow_the_schedule_and_time_zone_as_you_type(
    site: Site, pages: Pages, alice: Page
) -> None:
    page = alice
    pages.errors_of(page).expect("status of 422")  # the preview of an invalid expression
    page.goto("/agents/new")
    fires = page.locator("#fire-times li")
    note = page.locator("#preview-note")
    expect(note).to_have_text("No schedule: the agent runs when started or triggered.")

    page.get_by_label("Schedule (cron)").press_sequentially("0 9 * * *")
    expect(fires).to_have_text(fires_shown("0 9 * * *", "UTC"))

    page.get_by_label("Time zone").fill("Asia/Tokyo")
    expect(fires).to_have_text(fires_shown("0 9 * * *", "Asia/Tokyo"))
    expect(page.locator("#preview-zone")).to_have_text(" (Asia/Tokyo)")
    assert all(text.endswith("09:00 JST") for text in fires.all_inner_texts())

    page.get_by_label("Schedule (cron)").fill("0 9 * *")
    expect(note).to_contain_text("not a valid cron expression")
    expect(fires).to_have_count(0)
    page.get_by_label("Schedule (cron)").fill("30 17 * * 5")
    page.get_by_label("Time zone").fill("Mars/Olympus")
    expect(note).to_contain_text("'Mars/Olympus' is not an IANA time zone name")
    page.get_by_label("Time zone").fill("Europe/Paris")
    expect(fires).to_have_text(fires_shown("30 17 * * 5", "Europe/Paris"))


def test_editing_shows_the_current_values_and_saves_changes(site: Site, alice: Page) -> None:
    page = alice
    agent = make_agent(
        page,
        name="Nightly",
        schedule="0 2 * * *",
        timezone="Europe/Paris",
        config={"max_steps": 4},
        notify_url="https://hooks.example.com/zerg",
    )
    page.goto(f"/agents/{agent['id']}")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Nightly")
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")
    expect(page.get_by_label("Notify URL")).to_have_value("https://hooks.example.com/zerg")
    assert json.loads(page.get_by_label("Config (JSON)").input_value()) == {"max_steps": 4}
    expect(page.get_by_label("calculator")).to_be_checked()
    expect(page.get_by_label("Run on schedule")).to_be_checked()
    expect(page.locator("#fire-times li")).to_have_text(fires_shown("0 2 * * *", "Europe/Paris"))
    links = page.get_by_role("navigation", name="This agent")
    runs = links.get_by_role("link", name="Runs")
    expect(runs).to_have_attribute("href", f"/runs?agent_id={agent['id']}")
    expect(links.get_by_role("link", name="Charts")).to_have_attribute(
        "href", f"/stats?agent_id={agent['id']}"
    )

    page.get_by_label("Name", exact=True).fill("Nightly report")
    page.get_by_label("Run on schedule").uncheck()
    page.get_by_label("current_time").check()
    page.get_by_label("Timeout (seconds)").fill("90")
    page.get_by_role("button", name="Save changes").click()

    expect(page.get_by_role("status").filter(has_text="Changes saved.")).to_be_visible()
    expect(page).to_have_url(f"/agents/{agent['id']}")
    page.reload()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Nightly report")
    expect(page.get_by_label("Run on schedule")).not_to_be_checked()
    expect(page.get_by_label("current_time")).to_be_checked()
    expect(page.get_by_label("Timeout (seconds)")).to_have_value("90")
    saved = page.evaluate("id => Zerg.api('GET', `/api/agents/${id}`)", agent["id"])["data"]
    assert saved["next_run_at"] is None and set(saved["tools"]) == {"calculator", "current_time"}


def test_deleting_an_agent_asks_first(site: Site, pages: Pages, alice: Page) -> None:
    page = alice
    pages.errors_of(page).expect("status of 404")  # the API's answer for the deleted agent
    agent = make_agent(page, name="Doomed")
    page.goto(f"/agents/{agent['id']}")
    confirm = page.get_by_role("button", name="Yes, delete Doomed")
    expect(confirm).to_be_hidden()

    page.get_by_text("Delete agent…").click()
    confirm.click()

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("link", name="Doomed")).to_have_count(0)
    gone = page.evaluate("id => Zerg.api('GET', `/api/agents/${id}`)", agent["id"])
    assert gone["status"] == 404


def deliver(url: str, secret: str, msg_id: str) -> httpx.Response:
    body = json.dumps({"event": "deploy.finished", "service": "api"}).encode()
    return httpx.post(url, content=body, headers=standard_headers(secret, body, msg_id))


def test_a_webhook_trigger_fires_its_agent_and_its_secret_is_shown_once(
    site: Site, pages: Pages, alice: Page
) -> None:
    page = alice
    agent = make_agent(page, task_instructions="Work out 6 * 7 with the calculator.")
    page.goto(f"/agents/{agent['id']}")
    expect(page.get_by_text("No triggers yet.")).to_be_visible()

    page.get_by_label("Signature scheme").select_option("standard")
    page.get_by_role("button", name="Add trigger").click()

    shown = page.locator("#new-secret")
    expect(shown).to_contain_text("shown only this once")
    secret = page.get_by_label(re.compile(r"^Secret of trigger #\d+$")).input_value()
    assert secret.startswith("whsec_")
    url_input = page.get_by_label(re.compile(r"^Delivery URL of trigger #\d+$"))
    url = url_input.input_value()
    assert re.fullmatch(re.escape(site.url) + r"/hooks/[\w-]+", url), url
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page.get_by_role("button", name="Copy URL").click()
    expect(page.locator("#triggers .copy-note").last).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == url
    shoot(page, "agent-edit")

    page.reload()  # the answer to the POST; a reload is the agent's page, without the secret
    expect(page).to_have_url(f"/agents/{agent['id']}")
    expect(shown).to_have_count(0)
    assert secret not in page.content()

    delivered = deliver(url, secret, "msg_1")
    assert delivered.status_code == 202, delivered.text
    run_id = delivered.json()["id"]
    page.goto("/")
    last_run = page.locator(f"#agent-{agent['id']} [data-field=last-run]")
    expect(last_run).to_contain_text(f"#{run_id}")
    # Read through the page's own API client (its session cookie), until the run has ended.
    finished = wait_for(
        lambda: page.evaluate(
            """async (id) => {
                const runs = (await Zerg.api("GET", `/api/runs?agent_id=${id}`)).data.items;
                return runs.length && Zerg.FINAL.has(runs[0].status) ? runs : null;
            }""",
            agent["id"],
        ),
        "the webhook's run to end",
    )
    assert [(r["id"], r["trigger"], r["status"]) for r in finished] == [
        (run_id, "webhook", "succeeded")
    ]

    page.goto(f"/agents/{agent['id']}")
    expect(page.locator("#triggers tbody tr")).to_have_count(1)
    expect(page.locator("#triggers td[data-label='Last fired']")).not_to_have_text("never")
    page.get_by_role("button", name=re.compile(r"^Rotate the secret of trigger")).click()
    expect(shown).to_contain_text("The previous secret keeps working until")
    rotated = page.get_by_label(re.compile(r"^Secret of trigger #\d+$")).input_value()
    assert rotated.startswith("whsec_") and rotated != secret
    assert deliver(url, rotated, "msg_2").status_code == 202

    page.get_by_text("Delete…").click()
    page.get_by_role("button", name=re.compile(r"^Yes, delete trigger")).click()

    expect(page.get_by_role("status").filter(has_text="Trigger deleted.")).to_be_visible()
    expect(page.get_by_text("No triggers yet.")).to_be_visible()
    assert deliver(url, rotated, "msg_3").status_code == 404
