"""The chat (/chat, /chat/{id}): picking an agent, tokens appearing as the model writes them,
tool calls inline, ■ Stop, a busy thread's 409, and another user's chat kept out of reach."""

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Pages, Site, openai_config, shoot, sign_in
from tests.e2e.test_threads import DEMO, api
from tests.support.openai_server import FakeOpenAI

ANSWER = " ".join(f"word{n}" for n in range(40))


def openai_agent(page: Page, server: FakeOpenAI, **fields: Any) -> dict[str, Any]:
    agent = {
        "name": "Streaming agent",
        "model": "openai:gpt-test",
        "config": {**openai_config(server), "max_retries": 0},
        **fields,
    }
    return dict(api(page, "POST", "/api/agents", agent))


def open_chat(page: Page, agent: dict[str, Any]) -> int:
    """Start a chat with `agent` from the chat page; returns the thread's id."""
    page.goto("/chat")
    page.get_by_label("Agent").select_option(str(agent["id"]))
    page.get_by_role("button", name="Start chat").click()
    expect(page).to_have_url(re.compile(r"/chat/\d+$"))
    # The URL changes once the chat page starts loading; its script, which sends on Enter, has
    # run by DOMContentLoaded. An Enter pressed before that only adds a new line.
    page.wait_for_load_state("domcontentloaded")
    return int(page.url.rsplit("/", 1)[1])


def send(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def test_picking_an_agent_starts_a_chat_listed_among_the_recent_ones(
    site: Site, alice: Page
) -> None:
    page = alice
    api(page, "POST", "/api/agents", {**DEMO, "name": "First agent"})
    agent = api(page, "POST", "/api/agents", DEMO)

    thread_id = open_chat(page, agent)

    expect(page.get_by_role("link", name="Calculator agent")).to_be_visible()
    messages = page.locator("ol.messages > li")
    expect(messages).to_have_count(1)
    expect(messages.first).to_have_attribute("data-role", "system")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    expect(page.get_by_role("button", name="■ Stop")).to_be_disabled()
    page.goto("/chat")
    row = page.locator(f"table.chats tr[data-thread-id='{thread_id}']")
    expect(row.get_by_role("link")).to_have_attribute("href", f"/chat/{thread_id}")
    expect(row).to_contain_text("Calculator agent")
    shoot(page, "chat-pick")


def test_tokens_appear_as_they_stream_and_end_as_the_stored_message(
    site: Site, alice: Page, openai_server: FakeOpenAI
) -> None:
    page = alice
    openai_server.stream_delay = 0.2  # 40 words over 8 s: time to look mid-turn
    openai_server.reply_text(ANSWER)
    thread_id = open_chat(page, openai_agent(page, openai_server))
    send_button = page.get_by_role("button", name="Send")
    stop = page.get_by_role("button", name="■ Stop")

    send(page, "Count to forty, please.")

    expect(page.locator("ol.messages > li.user .text")).to_have_text("Count to forty, please.")
    expect(page.get_by_role("textbox", name="Message")).to_have_value("")
    live = page.locator("ol.messages > li.live .text")
    expect(live).to_contain_text("word0 word1 word2")
    # The turn has not ended: its first tokens are on screen, the rest still to come.
    expect(stop).to_be_enabled()
    expect(send_button).to_be_disabled()
    assert "word39" not in live.inner_text()
    shoot(page, "chat-streaming")

    answer = page.locator("ol.messages > li.assistant:not(.live)").last
    expect(answer.locator(".text")).to_have_text(ANSWER, timeout=30_000)  # the rest of the stream
    expect(page.locator("ol.messages > li.live")).to_have_count(0)
    expect(stop).to_be_disabled()
    expect(send_button).to_be_enabled()
    stored = api(page, "GET", f"/api/threads/{thread_id}/messages")["items"]
    assert [(m["role"], m["content"]) for m in stored[1:]] == [
        ("user", "Count to forty, please."),
        ("assistant", ANSWER),
    ]
    assert answer.get_attribute("data-message-id") == str(stored[-1]["id"])


def test_a_tool_call_shows_inline_as_the_turn_makes_it(site: Site, alice: Page) -> None:
    page = alice
    open_chat(page, api(page, "POST", "/api/agents", DEMO))

    send(page, "What is 6 * 7?\nUse the calculator.")

    # The answer streams into a live reply first, which makes way for the stored message.
    messages = page.locator("ol.messages > li:not(.live)")
    expect(messages).to_have_count(5)
    assert [m.get_attribute("data-role") for m in messages.all()] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    expect(page.locator("ol.messages > li.live")).to_have_count(0)
    expect(messages.nth(1).locator(".text")).to_have_text("What is 6 * 7?\nUse the calculator.")
    expect(messages.nth(2).locator(".tool-call .tool-name")).to_have_text("calculator")
    expect(messages.nth(2).locator(".tool-call pre.json")).to_contain_text('"expression": "6 * 7"')
    expect(messages.nth(3).locator("pre")).to_have_text("42")
    expect(messages.nth(4).locator(".text")).to_have_text("The calculator tool says: 42")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    expect(page.locator("#turn-state")).to_have_text("")
    shoot(page, "chat")


def test_shift_enter_starts_a_new_line_and_enter_sends(site: Site, alice: Page) -> None:
    page = alice
    open_chat(page, api(page, "POST", "/api/agents", {**DEMO, "model": "scripted:echo"}))
    box = page.get_by_role("textbox", name="Message")
    box.fill("one")
    box.press("Shift+Enter")
    box.press_sequentially("two")
    expect(box).to_have_value("one\ntwo")
    expect(page.locator("ol.messages > li")).to_have_count(1)
    box.press("Enter")
    expect(page.locator("ol.messages > li.assistant .text")).to_have_text("echo: one\ntwo")


def test_stop_cancels_a_hanging_turn(site: Site, alice: Page, openai_server: FakeOpenAI) -> None:
    page = alice
    openai_server.reply_hang()
    thread_id = open_chat(page, openai_agent(page, openai_server))
    stop = page.get_by_role("button", name="■ Stop")

    send(page, "Are you there?")
    expect(stop).to_be_enabled()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    stop.click()

    expect(page.locator("#turn-state")).to_contain_text("Cancelled")
    expect(stop).to_be_disabled()
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    runs = api(page, "GET", "/api/runs?trigger=chat")["items"]
    assert [(r["thread_id"], r["status"]) for r in runs] == [(thread_id, "cancelled")]


def test_a_message_sent_while_a_turn_runs_gets_the_409_shown_by_the_composer(
    site: Site, alice: Page, pages: Pages, openai_server: FakeOpenAI
) -> None:
    openai_server.reply_hang()
    thread_id = open_chat(alice, openai_agent(alice, openai_server))
    other_tab = pages.new()
    sign_in(other_tab, "alice")
    other_tab.goto(f"/chat/{thread_id}")

    send(alice, "First message")
    expect(alice.get_by_role("button", name="■ Stop")).to_be_enabled()
    expect(other_tab.locator("ol.messages > li.user .text")).to_have_text("First message")
    pages.errors_of(other_tab).expect("status of 409")
    send(other_tab, "Second message")

    expect(other_tab.get_by_role("alert")).to_contain_text("still answering the previous message")
    expect(other_tab.get_by_role("textbox", name="Message")).to_have_value("Second message")
    # The other tab may stop the turn too; both see it end.
    other_tab.get_by_role("button", name="■ Stop").click()
    for page in (alice, other_tab):
        expect(page.locator("#turn-state")).to_contain_text("Cancelled")
        expect(page.get_by_role("button", name="Send")).to_be_enabled()


def test_another_users_chat_is_not_found(site: Site, alice: Page, pages: Pages) -> None:
    thread_id = open_chat(alice, api(alice, "POST", "/api/agents", DEMO))
    bob = pages.new()
    sign_in(bob, "bob")
    pages.errors_of(bob).expect("status of 404")

    response = bob.goto(f"/chat/{thread_id}")

    assert response is not None and response.status == 404
    expect(bob.get_by_role("heading", name="Not found")).to_be_visible()
    expect(bob.get_by_role("textbox", name="Message")).to_have_count(0)
    bob.goto("/chat")
    expect(bob.locator("table.chats")).to_have_count(0)
    expect(bob.get_by_text("You have no agents to chat with yet.")).to_be_visible()
