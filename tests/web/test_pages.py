"""What every dashboard page carries, and which requests get pages rather than JSON."""

import httpx

HTML = {"Accept": "text/html,application/xhtml+xml"}


def test_pages_allow_no_inline_script_no_framing_and_no_caching(client: httpx.Client) -> None:
    page = client.get("/", headers=HTML)

    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text  # scripts come from /static, which the policy allows
    assert client.get("/static/zerg.js").status_code == 200


def test_a_browser_gets_an_error_page_and_the_api_keeps_json(client: httpx.Client) -> None:
    missing_page = client.get("/no/such/page", headers=HTML)
    missing_run = client.get("/runs/999", headers=HTML)
    api = client.get("/api/runs/999", headers=HTML)

    assert missing_page.status_code == 404 and "<h1>Not found</h1>" in missing_page.text
    assert missing_run.status_code == 404 and "run 999 does not exist" in missing_run.text
    assert api.status_code == 404
    assert api.json() == {"detail": "run 999 does not exist", "code": "not_found"}
    # A script asking a page's route for JSON gets JSON.
    assert client.get("/runs/999").json()["code"] == "not_found"


def test_local_mode_pages_refuse_a_host_that_is_not_loopback(client: httpx.Client) -> None:
    rebound = client.get("/", headers={**HTML, "Host": "attacker.example"})

    assert rebound.status_code == 421
    assert "host_not_allowed" in rebound.text
    assert "<html" in rebound.text
