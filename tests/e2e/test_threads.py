"""The thread view (/threads/{id}): every message of a run's thread (tool calls with their
arguments, tool outputs readable, long ones folded), its agent and runs, followed live."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Pages, Site, openai_config, shoot, sign_in, until_live
from tests.support.openai_server import FakeOpenAI, ToolCall
from tests.support.waiting import wait_for
from zerg.db import Database
from zerg.services.threads import ThreadService
from zerg.settings import Settings

DEMO = {
    "name": "Calculator agent",
    "model": "scripted:demo",
    "system_instructions": "You use your calculator, then say what it gave.",
    "task_instructions": "Work out 6 * 7 with the calculator.",
    "tools": ["calculator"],
}


def api(page: Page, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the API from the page, as its scripts do; the call must succeed."""
    result = page.evaluate(
        "([method, path, body]) => Zerg.api(method, path, body ?? undefined)", [method, path, body]
    )
    assert result["ok"], result
    return result["data"]


def finished_demo_run(page: Page) -> dict[str, Any]:
    agent = api(page, "POST", "/api/agents", DEMO)
    run = api(page, "POST", f"/api/agents/{agent['id']}/task?wait=true&timeout_s=20")
    assert run["status"] == "succeeded", run
    return dict(run)


def add_tool_output(site: Site, tmp_path: Path, thread_id: int, content: str) -> None:
    """Store a tool message in the thread, as a tool of the run would."""
    database = Database(Settings(database_url=site.database_url, data_dir=tmp_path / "data"))
    try:
        with database.transaction() as db:
            ThreadService.add_message(
                db, thread_id, role="tool", content=content, tool_call_id="call_x", name="http_get"
            )
    finally:
        database.dispose()


def test_the_thread_of_a_task_run_shows_every_message_with_tool_calls_and_outputs(
    site: Site, alice: Page, tmp_path: Path
) -> None:
    page = alice
    run = finished_demo_run(page)
    page.goto(f"/threads/{run['thread_id']}")

    expect(page.get_by_role("heading", level=1)).to_contain_text("Manual run")
    expect(
        page.locator("#thread-view").get_by_role("link", name="Calculator agent")
    ).to_be_visible()
    run_item = page.locator(f"#thread-runs li[data-run-id='{run['id']}']")
    expect(run_item.get_by_role("link", name=f"Run #{run['id']}")).to_have_attribute(
        "href", f"/runs/{run['id']}"
    )
    expect(run_item.locator(".badge")).to_have_text("succeeded")
    messages = page.locator("ol.messages > li")
    roles = ["system", "user", "assistant", "tool", "assistant"]
    expect(messages).to_have_count(len(roles))
    assert [m.get_attribute("data-role") for m in messages.all()] == roles

    system = messages.nth(0)
    expect(system.locator("details")).not_to_have_attribute("open", re.compile(".*"))
    expect(system.get_by_text("You use your calculator")).to_be_hidden()
    system.get_by_text("System").click()
    expect(system.get_by_text("You use your calculator")).to_be_visible()

    expect(messages.nth(1)).to_contain_text("Work out 6 * 7 with the calculator.")
    call = messages.nth(2).locator(".tool-call")
    expect(call.locator(".tool-name")).to_have_text("calculator")
    expect(call.locator("pre.json")).to_have_text(json.dumps({"expression": "6 * 7"}, indent=2))
    expect(messages.nth(3).locator(".tool-name")).to_have_text("calculator")
    expect(messages.nth(3).locator("pre")).to_have_text("42")
    expect(messages.nth(4).locator(".text")).to_have_text("The calculator tool says: 42")
    expect(page.locator("#follow-note")).to_be_hidden()

    # A long output is folded: its start shows, the rest is a click away.
    long_output = json.dumps({"rows": [{"n": n, "square": n * n} for n in range(60)]})
    add_tool_output(site, tmp_path, run["thread_id"], long_output)
    page.reload()
    folded = page.locator("ol.messages > li").nth(5).locator("details.fold")
    expect(folded).to_be_visible()
    expect(folded.locator("summary")).to_contain_text("Show all")
    expect(folded.locator("summary pre.head")).to_contain_text('"rows": [')
    tail = folded.get_by_text('"square": 3481', exact=False)
    expect(tail).to_be_hidden()
    shoot(page, "thread")
    folded.locator("summary").click()
    expect(tail).to_be_visible()
    expect(folded.locator("summary pre.head")).to_be_hidden()


def test_the_thread_view_follows_a_running_run_live(
    site: Site, alice: Page, openai_server: FakeOpenAI
) -> None:
    page = alice
    # The first model call hangs until released, then asks for the calculator; then answers.
    openai_server.reply_hang(then=ToolCall("calculator", {"expression": "2 + 2"}))
    openai_server.reply_text("2 + 2 is 4.")
    fields = {"model": "openai:gpt-test", "config": openai_config(openai_server)}
    agent = api(page, "POST", "/api/agents", {**DEMO, **fields})
    run = api(page, "POST", f"/api/agents/{agent['id']}/task")
    wait_for(openai_server.count, "the run's first model call")
    thread_id = api(page, "GET", f"/api/runs/{run['id']}")["thread_id"]

    page.goto(f"/threads/{thread_id}")
    expect(page.locator("#follow-note")).to_be_visible()
    expect(page.locator(f"#thread-runs li[data-run-id='{run['id']}'] .badge")).to_have_text(
        "running"
    )
    messages = page.locator("ol.messages > li")
    expect(messages).to_have_count(2)
    wait_for(lambda: openai_server.requests, "the model call to arrive")
    openai_server.release()

    expect(messages).to_have_count(5)
    expect(messages.nth(2).locator(".tool-call pre.json")).to_contain_text('"expression": "2 + 2"')
    expect(messages.nth(3).locator("pre")).to_have_text("4")
    expect(messages.nth(4).locator(".text")).to_have_text("2 + 2 is 4.")
    expect(page.locator(f"#thread-runs li[data-run-id='{run['id']}'] .badge")).to_have_text(
        "succeeded"
    )
    expect(page.locator("#follow-note")).to_be_hidden()
    # What came live is what a reload shows.
    markup = "items => items.map((item) => item.outerHTML)"
    live = messages.evaluate_all(markup)
    page.reload()
    assert messages.evaluate_all(markup) == live


def test_a_task_runs_thread_has_no_chat_and_another_users_thread_is_not_found(
    site: Site, alice: Page, pages: Pages
) -> None:
    run = finished_demo_run(alice)
    alice.goto(f"/chat/{run['thread_id']}")
    expect(alice).to_have_url(re.compile(rf"/threads/{run['thread_id']}$"))
    expect(alice.get_by_role("link", name="Continue this chat")).to_have_count(0)

    bob = pages.new()
    sign_in(bob, "bob")
    pages.errors_of(bob).expect("status of 404")
    response = bob.goto(f"/threads/{run['thread_id']}")
    assert response is not None and response.status == 404
    expect(bob.get_by_role("heading", name="Not found")).to_be_visible()
    expect(bob.get_by_text("Calculator agent")).to_have_count(0)
    response = bob.goto(f"/threads/{run['thread_id']}/messages?after_id=0")
    assert response is not None and response.status == 404


# The page's socket outlives the sign-out (its sign-in is checked again only every 300 s), so
# the event that makes the page read again reaches it.
@pytest.mark.parametrize("zerg_env", [{"ZERG_HEARTBEAT_S": "300"}], ids=["checked-seldom"])
def test_a_thread_followed_after_a_sign_out_elsewhere_keeps_its_messages(
    site: Site, pages: Pages, alice: Page
) -> None:
    bob = pages.new()
    sign_in(bob, "bob")
    agent = api(bob, "POST", "/api/agents", DEMO)
    thread = api(bob, "POST", "/api/threads", {"agent_id": agent["id"]})
    alice.goto(f"/threads/{thread['id']}")  # alice is an admin: she may follow bob's chat
    messages = alice.locator("ol.messages > li[data-message-id]")
    expect(messages).to_have_count(1)
    until_live(alice)
    elsewhere = alice.context.new_page()
    elsewhere.goto("/")
    elsewhere.get_by_role("button", name="Sign out").click()
    expect(elsewhere).to_have_url(re.compile(r"/login$"))

    # bob's message makes alice's page read what is new in the thread.
    with alice.expect_response(lambda response: "/messages?after_id=" in response.url) as read:
        api(bob, "POST", f"/api/threads/{thread['id']}/messages", {"content": "6 * 7?"})

    assert read.value.status == 303, "the page's read gets the sign-in page, not an error"
    expect(messages).to_have_count(1)
    expect(messages.first).to_have_attribute("data-role", "system")
