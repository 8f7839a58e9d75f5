"""The dashboard in a real browser: Debian's chromium driven by Playwright, against a real
`zerg serve` on the test's database (scripts/test installs chromium when it is missing).

Every page fails its test on a console error or an uncaught exception, unless the test said
it expects that error (a 409 it provoked, say). `shoot(page, name)` saves the page at 1280 px
and at 390 px wide in test-artifacts/screenshots/ (or $ZERG_TEST_ARTIFACTS/screenshots/).
"""

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.support.processes import ZergProcess
from zerg.db import Database
from zerg.services.users import create_user, set_password
from zerg.settings import Settings

if TYPE_CHECKING:
    from tests.support.openai_server import FakeOpenAI

# What a page shows may take a while on a loaded 2-core machine; a wrong page still fails.
expect.set_options(timeout=10_000)
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ZERG_TEST_ARTIFACTS", ROOT / "test-artifacts"))
WIDTHS = (1280, 390)
PASSWORD = "correct horse battery"
# Without these, chromium reaches for Google's services at start, and this machine's closed
# network refuses it loudly; --no-sandbox: CI runs the tests as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("ZERG_CHROMIUM") or shutil.which("chromium")
    if path is None:
        pytest.fail(
            "the browser tests need Debian's chromium: `apt-get install chromium` (scripts/test "
            "installs it), or point ZERG_CHROMIUM at a Chromium binary"
        )
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The browser tests run on the embedded default (SQLite) only: each starts a `zerg
    serve`, and what the pages read and write runs on both databases in tests/web and the API
    and service tests."""
    here = Path(__file__).parent
    other = [
        item
        for item in items
        if item.path.is_relative_to(here)
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("backend", "sqlite") != "sqlite"  # type: ignore[attr-defined]
    ]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [item for item in items if item not in other]


# Per module, not per session: while Playwright's sync API runs, the main thread counts as
# running an event loop, which the next module's tests (DBOS's launch, asyncio.run) refuse.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Site:
    """A running `zerg serve`, and its users (all with password PASSWORD)."""

    url: str
    database_url: str
    users: list[str] = field(default_factory=list)


def add_users(database_url: str, tmp_path: Path, *names: str) -> None:
    """Create users (the first an admin) with PASSWORD, as `zerg users create` would."""
    database = Database(Settings(database_url=database_url, data_dir=tmp_path / "data"))
    try:
        with database.session() as session:
            for index, name in enumerate(names):
                create_user(name, admin=index == 0, session=session)
                set_password(name, PASSWORD, session=session)
            session.commit()
    finally:
        database.dispose()


@pytest.fixture
def zerg_env() -> dict[str, str]:
    """More of the server's environment (a test parametrizes it for a setting of its own)."""
    return {}


@pytest.fixture
def site(zerg: ZergProcess, database_url: str, tmp_path: Path, zerg_env: dict[str, str]) -> Site:
    """Zerg in auth mode with users alice (admin) and bob."""
    add_users(database_url, tmp_path, "alice", "bob")
    zerg.env.update(zerg_env)
    zerg.start()
    return Site(zerg.url, database_url, ["alice", "bob"])


@pytest.fixture
def local_site(zerg: ZergProcess, database_url: str) -> Site:
    """Zerg in local mode: no users, loopback only."""
    zerg.start()
    return Site(zerg.url, database_url)


class ConsoleErrors:
    """A page's console errors and uncaught exceptions; `expect(pattern)` allows one kind."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def expect(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.seen if not any(p.search(e) for p in self.allowed)]


@dataclass
class Pages:
    """Opens pages in new browser contexts (separate cookies: separate users) and checks,
    at the end of the test, that none logged an error it did not expect."""

    browser: Browser
    base_url: str
    errors: dict[int, ConsoleErrors] = field(default_factory=dict)

    def new(self, width: int = 1280) -> Page:
        context = self.browser.new_context(
            base_url=self.base_url, viewport={"width": width, "height": 900}
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        errors = self.errors[id(page)] = ConsoleErrors()

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.seen.append(f"console: {message.text} at {message.location}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: errors.seen.append(f"uncaught: {error}"))
        return page

    def errors_of(self, page: Page) -> ConsoleErrors:
        return self.errors[id(page)]

    def check(self) -> None:
        unexpected = [e for errors in self.errors.values() for e in errors.unexpected()]
        assert not unexpected, f"the pages logged errors: {unexpected}"


@pytest.fixture
def pages(database_url: str, browser: Browser, request: pytest.FixtureRequest) -> Iterator[Pages]:
    """New pages on the test's site (`site`, or `local_site` when the test uses that).

    It names `database_url` so that the session's template database is made before the
    browser starts (Playwright's loop is in the way of DBOS's launch in this thread)."""
    chosen = "local_site" if "local_site" in request.fixturenames else "site"
    running: Site = request.getfixturevalue(chosen)
    opened = Pages(browser, running.url)
    yield opened
    for context in browser.contexts:
        context.close()
    opened.check()


def sign_in(page: Page, name: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^(?!.*/login)"))


def until_live(page: Page) -> None:
    """Wait until the page follows its updates live (its WebSocket has subscribed)."""
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")


@pytest.fixture
def alice(pages: Pages) -> Page:
    """A page signed in as alice (admin), on the agents page."""
    page = pages.new()
    sign_in(page, "alice")
    return page


def shoot(page: Page, name: str) -> None:
    """Save the page as it is at each width in WIDTHS (the viewport is put back after)."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or {"width": 1280, "height": 900}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": size["height"]})
        page.screenshot(path=folder / f"{name}-{width}.png", full_page=True)
    page.set_viewport_size(size)


# The fake OpenAI server's base URL, as agents on `openai:` models name it in their config.
def openai_config(server: "FakeOpenAI") -> dict[str, str]:
    return {"base_url": f"{server.base_url}/v1"}


Shoot = Callable[[Page, str], None]
