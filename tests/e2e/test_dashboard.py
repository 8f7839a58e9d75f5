"""The agents page: signing in and out, live badges, ▶ Play and ■ Stop, the demo agent."""

import re
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import (
    PASSWORD,
    Pages,
    Site,
    openai_config,
    shoot,
    sign_in,
    until_live,
)
from tests.support.openai_server import FakeOpenAI, Text
from tests.support.waiting import wait_for


def test_pages_need_a_sign_in_and_a_wrong_password_says_so(site: Site, pages: Pages) -> None:
    page = pages.new()
    page.goto("/runs?status=failed")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fruns%3Fstatus%3Dfailed$"))
    shoot(page, "login")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("not the password")
    pages.errors_of(page).expect("status of 401")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("wrong user name or password")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/runs\?status=failed$"))


def create_agent(page: Page, **fields: object) -> dict[str, Any]:
    """An agent made through the API from the page (its session cookie and CSRF token)."""
    body = {"name": "Watcher", "model": "scripted:demo", "task_instructions": "6 * 7?", **fields}
    result = page.evaluate("body => Zerg.api('POST', '/api/agents', body)", body)
    assert result["status"] == 201, result
    agent: dict[str, Any] = result["data"]
    return agent


def hanging_agent(page: Page, server: FakeOpenAI, **fields: object) -> dict[str, Any]:
    """An agent on the fake OpenAI server, whose next model call hangs until released."""
    server.reply_hang(then=Text("done"))
    return create_agent(
        page, name="Hanger", model="openai:gpt-test", config=openai_config(server), **fields
    )


def row(page: Page, agent: dict[str, Any]) -> Locator:
    return page.locator(f"#agent-{agent['id']}")


def badge(page: Page, agent: dict[str, Any]) -> Locator:
    return row(page, agent).locator('[data-field="status"]')


def test_signing_out_ends_the_session(site: Site, pages: Pages, alice: Page) -> None:
    cookie = next(c for c in alice.context.cookies() if c["name"] == "zerg_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    # Signed out while its WebSocket still opened, the page would have its handshake refused.
    until_live(alice)

    alice.get_by_role("button", name="Sign out").click()

    expect(alice).to_have_url(re.compile(r"/login$"))
    again = pages.new()
    again.context.add_cookies([cookie])
    again.goto("/")
    expect(again).to_have_url(re.compile(r"/login\?next=%2F$"))


# The page's socket outlives the sign-out (its sign-in is checked again only every 300 s), so
# the event that makes the page read again reaches it.
@pytest.mark.parametrize("zerg_env", [{"ZERG_HEARTBEAT_S": "300"}], ids=["checked-seldom"])
def test_the_table_kept_live_after_a_sign_out_elsewhere_keeps_its_rows(
    site: Site, pages: Pages, alice: Page
) -> None:
    mine = create_agent(alice, name="Alices agent")
    expect(row(alice, mine)).to_be_visible()
    until_live(alice)
    # Signing out in another tab of the browser ends the session this page was opened with.
    elsewhere = alice.context.new_page()
    elsewhere.goto("/")
    elsewhere.get_by_role("button", name="Sign out").click()
    expect(elsewhere).to_have_url(re.compile(r"/login$"))

    bob = pages.new()
    sign_in(bob, "bob")
    # An agent coming (alice is an admin: she hears of it) makes alice's page read its rows.
    with alice.expect_response(lambda response: "/agents-table" in response.url) as refreshed:
        create_agent(bob, name="Bobs agent")

    assert refreshed.value.status == 303, "a page's refresh gets the sign-in page, not an error"
    assert refreshed.value.headers["location"].startswith("/login?next=")
    expect(alice.locator("tr[data-agent-id]")).to_have_count(1)
    expect(row(alice, mine)).to_be_visible()


@pytest.mark.parametrize("zerg_env", [{"ZERG_HEARTBEAT_S": "0.5"}], ids=["checked-often"])
def test_a_page_whose_session_ended_elsewhere_offers_a_new_sign_in(
    site: Site, pages: Pages, alice: Page
) -> None:
    alice.goto("/runs")
    until_live(alice)
    elsewhere = alice.context.new_page()
    elsewhere.goto("/")
    elsewhere.get_by_role("button", name="Sign out").click()
    expect(elsewhere).to_have_url(re.compile(r"/login$"))

    state = alice.locator("#live-state")
    expect(state).to_have_text("Your session has ended, and live updates with it. Sign in again")
    expect(state).to_have_attribute("data-state", "ended")
    shoot(alice, "session-ended")
    state.get_by_role("link", name="Sign in again").click()
    expect(alice).to_have_url(re.compile(r"/login\?next=%2Fruns$"))
    alice.get_by_label("User name").fill("alice")
    alice.get_by_label("Password").fill(PASSWORD)
    alice.get_by_role("button", name="Sign in").click()
    expect(alice).to_have_url(re.compile(r"/runs$"))
    until_live(alice)
    expect(state).to_have_text("")


def test_local_mode_opens_straight_in_and_the_demo_agent_runs(
    local_site: Site, pages: Pages
) -> None:
    page = pages.new()
    page.goto("/")
    expect(page.get_by_role("heading", name="No agents yet")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    shoot(page, "agents-empty")

    page.get_by_role("button", name="Create the demo agent").click()
    demo = page.locator("tr[data-agent-id]")
    expect(demo).to_have_count(1)
    expect(demo.locator('[data-field="model"]')).to_have_text("scripted:demo")
    expect(page.get_by_role("heading", name="No agents yet")).to_have_count(0)

    demo.get_by_role("button", name="Play Demo agent").click()
    link = demo.get_by_role("link", name="open its thread")
    expect(link).to_be_visible()
    expect(demo.locator('[data-field="note"]')).to_contain_text("succeeded")
    expect(demo.locator('[data-field="status"]')).to_have_text("idle")
    expect(demo.locator('[data-field="last-run"]')).to_contain_text("succeeded")
    shoot(page, "agents")

    link.click()
    expect(page).to_have_url(re.compile(r"/threads/\d+$"))
    expect(page.get_by_text("calculator").first).to_be_visible()


def test_play_turns_the_badge_running_then_idle_on_every_open_page(
    site: Site, pages: Pages, alice: Page, openai_server: FakeOpenAI
) -> None:
    agent = hanging_agent(alice, openai_server)
    alice.reload()
    other = pages.new(width=390)
    sign_in(other, "alice")
    expect(badge(other, agent)).to_have_text("idle")

    row(alice, agent).get_by_role("button", name="Play Hanger").click()

    expect(badge(other, agent)).to_have_text("running")  # the other page, never reloaded
    expect(badge(alice, agent)).to_have_text("running")
    expect(row(other, agent).get_by_role("button", name="Stop Hanger")).to_be_enabled()
    shoot(alice, "agents-running")
    wait_for(lambda: openai_server.requests, "the model call to arrive")
    openai_server.release()
    expect(badge(other, agent)).to_have_text("idle")
    expect(badge(alice, agent)).to_have_text("idle")
    expect(row(alice, agent).get_by_role("link", name="open its thread")).to_be_visible()
    expect(row(other, agent).get_by_role("button", name="Stop Hanger")).to_be_disabled()
    # Only the page that pressed Play announces the run's end.
    expect(row(other, agent).locator('[data-field="note"]')).to_be_empty()


def test_play_on_a_busy_reject_agent_shows_the_409_next_to_the_agent(
    site: Site, pages: Pages, alice: Page, openai_server: FakeOpenAI
) -> None:
    agent = hanging_agent(alice, openai_server, concurrency="reject")
    alice.reload()
    play = row(alice, agent).get_by_role("button", name="Play Hanger")
    play.click()
    expect(badge(alice, agent)).to_have_text("running")
    pages.errors_of(alice).expect(r"status of 409")

    play.click()

    note = row(alice, agent).locator('[data-field="note"]')
    expect(note).to_contain_text(f"agent {agent['id']} is busy with run")
    expect(note).to_have_class(re.compile(r"\berror\b"))
    shoot(alice, "agents-409")
    wait_for(lambda: openai_server.requests, "the model call to arrive")
    openai_server.release()
    expect(badge(alice, agent)).to_have_text("idle")


def test_stop_cancels_a_hanging_run(
    site: Site, pages: Pages, alice: Page, openai_server: FakeOpenAI
) -> None:
    agent = hanging_agent(alice, openai_server)
    alice.reload()
    row(alice, agent).get_by_role("button", name="Play Hanger").click()
    stop = row(alice, agent).get_by_role("button", name="Stop Hanger")
    expect(stop).to_be_enabled()
    wait_for(lambda: openai_server.count() == 1, "the model call")

    stop.click()

    expect(row(alice, agent).locator('[data-field="note"]')).to_contain_text("cancelled")
    expect(badge(alice, agent)).to_have_text("idle")
    expect(stop).to_be_disabled()
    wait_for(lambda: openai_server.cut_off, "the model call cut off")


def test_a_post_without_the_csrf_token_is_refused(site: Site, alice: Page) -> None:
    agent = create_agent(alice)

    form = alice.request.post("/demo", form={"nothing": "x"})
    api = alice.request.post(f"/api/agents/{agent['id']}/task")
    foreign = alice.request.post(
        f"/api/agents/{agent['id']}/task",
        headers={"X-CSRF-Token": alice.evaluate("Zerg.csrf"), "Origin": "http://evil.example"},
    )

    assert form.status == 403
    assert api.status == 403 and api.json()["code"] == "csrf_failed"
    assert foreign.status == 403 and foreign.json()["code"] == "origin_not_allowed"
    runs = alice.evaluate("Zerg.api('GET', '/api/runs')")["data"]["items"]
    agents = alice.evaluate("Zerg.api('GET', '/api/agents')")["data"]["items"]
    assert runs == [] and [a["id"] for a in agents] == [agent["id"]]


def test_user_b_cannot_open_user_as_pages(site: Site, pages: Pages, alice: Page) -> None:
    agent = create_agent(alice, name="Alices agent")
    alice.reload()
    row(alice, agent).get_by_role("button", name="Play Alices agent").click()
    expect(row(alice, agent).get_by_role("link", name="open its thread")).to_be_visible()
    run = alice.evaluate("Zerg.api('GET', '/api/runs')")["data"]["items"][0]
    chat = alice.evaluate("id => Zerg.api('POST', '/api/threads', {agent_id: id})", agent["id"])[
        "data"
    ]
    own_pages = [
        f"/agents/{agent['id']}",
        f"/runs/{run['id']}",
        f"/threads/{run['thread_id']}",
        f"/chat/{chat['id']}",
        f"/stats?agent_id={agent['id']}",
    ]
    for path in own_pages:
        assert alice.goto(path).status == 200, path  # type: ignore[union-attr]

    bob = pages.new()
    sign_in(bob, "bob")
    expect(bob.locator("tr[data-agent-id]")).to_have_count(0)
    pages.errors_of(bob).expect(r"status of 404")
    for path in own_pages[:4]:
        response = bob.goto(path)
        assert response is not None and response.status == 404, path
        expect(bob.get_by_role("heading", name="Not found")).to_be_visible()
        expect(bob.get_by_text("Alices agent")).to_have_count(0)
    shoot(bob, "not-found")
    charts = bob.goto(own_pages[4])
    assert charts is not None
    expect(bob.get_by_text("Alices agent")).to_have_count(0)


def test_the_agents_page_works_from_the_keyboard_with_a_visible_focus(
    site: Site, alice: Page
) -> None:
    agent = create_agent(alice, name="Keys")
    alice.reload()
    play = row(alice, agent).get_by_role("button", name="Play Keys")

    for _ in range(20):  # skip link, brand, navigation, sign out, new agent, the agent...
        alice.keyboard.press("Tab")
        if play.evaluate("button => button === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the Play button")
    outline = play.evaluate("button => getComputedStyle(button).outlineStyle")
    assert outline not in ("", "none")
    alice.keyboard.press("Enter")

    expect(row(alice, agent).get_by_role("link", name="open its thread")).to_be_visible()
