"""The charts page in a browser: server-drawn SVG bars whose tooltips give the numbers of the
runs made in the test, for all agents and for one, and another user's agent kept out."""

from datetime import datetime

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Pages, Site, shoot, sign_in
from tests.e2e.test_runs import agent, finished_run


def tooltips(page: Page, chart: str) -> list[str]:
    return page.locator(f"#chart-{chart} svg rect title").all_text_contents()


def test_the_charts_show_the_days_runs_tokens_and_durations(site: Site, alice: Page) -> None:
    calc, broken = agent(alice, "Calculator"), agent(alice, "Broken", "scripted:error")
    runs = [finished_run(alice, calc), finished_run(alice, calc), finished_run(alice, broken)]
    day = datetime.fromisoformat(runs[0]["queued_at"]).date().isoformat()
    assert all(run["queued_at"].startswith(day) for run in runs)
    inputs = sum(run["input_tokens"] for run in runs)
    outputs = sum(run["output_tokens"] for run in runs)
    longest = max(run["duration_ms"] for run in runs)

    alice.goto("/stats")

    runs_chart = alice.locator("#chart-runs svg")
    expect(runs_chart).to_have_attribute("role", "img")
    expect(runs_chart.locator("> title")).to_have_text("Runs per day, by status")
    assert tooltips(alice, "runs") == [f"{day}: succeeded 2", f"{day}: failed 1"]
    assert tooltips(alice, "tokens") == [f"{day}: input {inputs:,}", f"{day}: output {outputs:,}"]
    durations = tooltips(alice, "duration")
    assert len(durations) == 2 and durations[1].startswith(f"{day}: longest ")
    assert durations[1] == f"{day}: longest {seconds(longest)}"
    expect(alice.locator("#chart-cost")).to_contain_text("No cost in these two weeks.")
    expect(alice.locator("#chart-runs .legend li")).to_have_text(
        ["queued", "running", "succeeded", "failed", "cancelled", "timed out"]
    )
    expect(alice.locator("#total-runs")).to_have_text("3")
    shoot(alice, "stats")

    alice.get_by_label("Agent").select_option(label="Broken")
    alice.get_by_role("button", name="Show").click()

    expect(alice.get_by_role("heading", name="Charts: Broken")).to_be_visible()
    assert tooltips(alice, "runs") == [f"{day}: failed 1"]
    expect(alice.locator("#total-runs")).to_have_text("1")
    shoot(alice, "stats-agent")


def test_another_users_agent_has_no_charts_for_them(site: Site, pages: Pages, alice: Page) -> None:
    calc = agent(alice, "Alice's agent")
    finished_run(alice, calc)
    bob = pages.new()
    sign_in(bob, "bob")
    pages.errors_of(bob).expect("status of 404")

    bob.goto("/stats")
    expect(bob.locator("#total-runs")).to_have_text("0")
    expect(bob.locator("#chart-runs")).to_contain_text("No runs in these two weeks.")
    response = bob.goto(f"/stats?agent_id={calc}")
    assert response is not None and response.status == 404
    expect(bob.get_by_role("alert")).to_have_text(f"agent {calc} does not exist")


def seconds(ms: int) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
