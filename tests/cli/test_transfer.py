"""`zerg export` and `zerg import`: agents and their triggers' settings moved as YAML between
real servers, each on its own database."""

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.cli.conftest import Member
from tests.cli.runner import Cli, error_line, json_output
from tests.support.server import serve_in_thread
from zerg.api.app import create_app
from zerg.db import Database
from zerg.db.engine import create_db_engine
from zerg.db.migrate import upgrade
from zerg.schemas.agents import AgentCreate
from zerg.services import users
from zerg.settings import Settings

DIGEST: dict[str, Any] = {
    "name": "digest",
    "model": "scripted:demo",
    "system_instructions": "You write short digests.\nNo more than five lines.\n",
    "task_instructions": "Summarise: what is 6 * 7?",
    "tools": ["calculator"],
    "schedule": "0 9 * * 1-5",
    "timezone": "Europe/Paris",
    "run_on_schedule": False,
    "missed_fires": "skip",
    "concurrency": "queue",
    "timeout_s": 120,
    "notify_url": "https://hooks.example.com/zerg",
    "config": {"max_steps": 7, "team": {"labels": ["ops", "daily"], "on": "yes"}},
}


@pytest.fixture
def other_url(empty_database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second Zerg with an empty database of its own, for a setup to move into."""
    settings = Settings(database_url=empty_database_url, data_dir=tmp_path / "other")
    Database(settings).dispose()  # creates the SQLite file's directory
    engine = create_db_engine(empty_database_url)
    upgrade(engine)
    engine.dispose()
    with serve_in_thread(create_app(settings)) as url:
        yield url


def create(base_url: str, fields: dict[str, Any], *schemes: str, token: str = "") -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    agent = httpx.post(f"{base_url}/api/agents", json=fields, headers=headers)
    agent.raise_for_status()
    for scheme in schemes:
        trigger = httpx.post(
            f"{base_url}/api/agents/{agent.json()['id']}/triggers",
            json={"scheme": scheme},
            headers=headers,
        )
        trigger.raise_for_status()
    return int(agent.json()["id"])


def setup_of(base_url: str) -> dict[str, dict[str, Any]]:
    """Every agent by name: the fields a user sets, and its triggers' schemes."""
    agents = httpx.get(f"{base_url}/api/agents").json()["items"]
    setup = {}
    for agent in agents:
        triggers = httpx.get(f"{base_url}/api/agents/{agent['id']}/triggers").json()["items"]
        fields = {name: agent[name] for name in AgentCreate.model_fields}
        setup[agent["name"]] = fields | {"triggers": sorted(t["scheme"] for t in triggers)}
    return setup


def write(tmp_path: Path, document: Any, name: str = "agents.yaml") -> str:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return str(path)


def test_export_then_import_into_an_empty_zerg_gives_the_same_agents(
    api_cli: Cli, base_url: str, other_url: str, tmp_path: Path
) -> None:
    create(base_url, DIGEST, "standard", "github")
    create(base_url, {"name": "calc", "model": "scripted:demo"})

    exported = api_cli("export")
    assert exported.exit_code == 0, exported.stderr
    assert exported.stderr == "exported 2 agent(s)\n"
    path = write(tmp_path, exported.stdout)
    imported = api_cli("import", path, ZERG_SERVER_URL=other_url)

    assert imported.exit_code == 0, imported.stderr
    assert setup_of(other_url) == setup_of(base_url)
    assert setup_of(other_url)["digest"]["triggers"] == ["github", "standard"]
    lines = imported.stdout.splitlines()
    assert lines[0] == "created agent 'digest' (id 1)"
    assert [line.split(":")[0] for line in lines[1:3]] == [
        "  webhook trigger 1 (standard)",
        "  webhook trigger 2 (github)",
    ]
    assert " secret whsec_" in lines[1]  # Standard Webhooks; GitHub's is hex
    assert len(lines[2].rpartition(" secret ")[2]) >= 32
    assert lines[3] == "created agent 'calc' (id 2)"
    assert "shown only now" in imported.stderr
    assert "GET /api/agents/1/notify-secret" in imported.stderr
    assert imported.stderr.splitlines()[-1] == "2 agent(s): 2 created"
    # The file is readable YAML for git: instructions as blocks, and never a secret.
    assert "system_instructions: |\n    You write short digests.\n" in exported.stdout
    assert "whsec_" not in exported.stdout
    assert "secret" not in json.dumps(yaml.safe_load(exported.stdout))


def test_a_second_import_changes_nothing(api_cli: Cli, base_url: str, tmp_path: Path) -> None:
    create(base_url, DIGEST, "standard")
    path = write(tmp_path, api_cli("export").stdout)
    before = httpx.get(f"{base_url}/api/agents").json()["items"]

    again = api_cli("import", path)

    assert again.exit_code == 0, again.stderr
    assert again.stdout == "unchanged agent 'digest' (id 1)\n"
    assert again.stderr == "1 agent(s): 1 unchanged\n"
    assert httpx.get(f"{base_url}/api/agents").json()["items"] == before
    assert len(httpx.get(f"{base_url}/api/agents/1/triggers").json()["items"]) == 1


def test_import_updates_what_differs_and_dry_run_changes_nothing(
    api_cli: Cli, base_url: str, tmp_path: Path
) -> None:
    create(base_url, DIGEST, "standard")
    document = yaml.safe_load(api_cli("export").stdout)
    document["agents"][0] |= {"timeout_s": 300, "tools": [], "schedule": None}
    document["agents"][0]["triggers"].append({"scheme": "github"})
    document["agents"].append({"name": "calc", "model": "scripted:demo"})
    path = write(tmp_path, document)

    dry = api_cli("import", path, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "would update agent 'digest' (id 1): tools, schedule, timeout_s; "
        "new webhook trigger(s): github",
        "would create agent 'calc'",
    ]
    assert dry.stderr.endswith("(dry run: nothing was changed)\n")
    assert set(setup_of(base_url)) == {"digest"}
    assert setup_of(base_url)["digest"]["timeout_s"] == 120

    report = json_output(api_cli("import", path, "--json"))

    assert report["dry_run"] is False
    digest, calc = report["agents"]
    assert digest["action"] == "updated" and digest["id"] == 1
    assert digest["changed"] == ["tools", "schedule", "timeout_s"]
    assert digest["new_triggers"][0]["scheme"] == "github"
    assert len(digest["new_triggers"][0]["secret"]) >= 32
    assert calc["action"] == "created" and calc["new_triggers"] == []
    after = setup_of(base_url)
    assert after["digest"]["timeout_s"] == 300 and after["digest"]["schedule"] is None
    assert after["digest"]["triggers"] == ["github", "standard"]
    assert after["calc"] == {**after["calc"], "model": "scripted:demo", "timeout_s": 600}
    unchanged = json_output(api_cli("import", path, "--json"))
    assert [a["action"] for a in unchanged["agents"]] == ["unchanged", "unchanged"]


def test_triggers_the_file_does_not_list_are_kept(
    api_cli: Cli, base_url: str, tmp_path: Path
) -> None:
    create(base_url, {"name": "calc", "model": "scripted:demo"}, "github")
    path = write(tmp_path, {"version": 1, "agents": [{"name": "calc", "model": "scripted:demo"}]})

    result = api_cli("import", path)

    assert result.stdout == "unchanged agent 'calc' (id 1)\n"
    assert "agent 'calc' has webhook trigger(s) 1 that the file does not list: kept" in (
        result.stderr
    )
    assert setup_of(base_url)["calc"]["triggers"] == ["github"]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {
                "version": 1,
                "agents": [
                    {"name": "ok", "model": "scripted:demo"},
                    {"name": "bad", "model": "scripted:demo", "timeout_s": 0, "tools": ["nope"]},
                ],
            },
            "agents[1] ('bad'): tools: unknown tool(s) nope",
        ),
        (
            {"version": 1, "agents": [{"name": "x", "model": "nowhere:m", "id": 3}]},
            "agents[0] ('x'): read-only field(s) cannot be set: id",
        ),
        (
            {"version": 1, "agents": [{"model": "scripted:demo", "triggers": [{"scheme": "x"}]}]},
            "agents[0]: name: Field required; triggers.0.scheme: Input should be 'standard' or",
        ),
        (
            {"version": 1, "agents": [{"name": "a", "model": "scripted:demo"}] * 2},
            "2 agents are named 'a'",
        ),
        ({"version": 2, "agents": []}, "version: Input should be 1"),
        ("agents: [unclosed", "is not valid YAML: while parsing a flow sequence"),
        ("- just a list", "is not a file of `zerg export`: it needs `version: 1`"),
    ],
    ids=["field", "read-only", "missing-and-trigger", "duplicate", "version", "yaml", "shape"],
)
def test_import_errors_name_the_agent_and_field_and_change_nothing(
    api_cli: Cli, base_url: str, tmp_path: Path, document: Any, expected: str
) -> None:
    line = error_line(api_cli("import", write(tmp_path, document)), 4)

    assert expected in line
    assert httpx.get(f"{base_url}/api/agents").json()["items"] == []


def test_the_servers_refusal_names_the_agent(api_cli: Cli, base_url: str, tmp_path: Path) -> None:
    # Valid for the schema; refused by this server, which does not list the model URL.
    fields = {"name": "far", "model": "openai:gpt-test", "config": {"base_url": "http://10.9.9.9"}}
    path = write(tmp_path, {"version": 1, "agents": [fields]})

    line = error_line(api_cli("import", path), 4)

    assert line.startswith("error: agent 'far': ")
    assert "base_url" in line


def test_export_json_is_the_same_document(api_cli: Cli, base_url: str, tmp_path: Path) -> None:
    create(base_url, DIGEST, "standard")
    out = tmp_path / "setup.yaml"

    as_json = json_output(api_cli("export", "--json"))
    to_file = api_cli("export", "--agent", "1", "--output", str(out))

    assert to_file.stdout == "" and to_file.stderr == f"exported 1 agent(s) to {out}\n"
    assert yaml.safe_load(out.read_text()) == as_json
    assert as_json["version"] == 1
    assert as_json["agents"][0] == {
        **{name: DIGEST.get(name) for name in AgentCreate.model_fields if name in DIGEST},
        **{k: v for k, v in as_json["agents"][0].items() if k not in DIGEST},
    }
    assert as_json["agents"][0]["triggers"] == [{"scheme": "standard"}]
    assert json_output(api_cli("import", str(out), "--json"))["agents"][0]["action"] == (
        "unchanged"
    )


def test_an_admin_exports_and_imports_their_own_agents_only(
    api_cli: Cli,
    base_url: str,
    database: Database,
    add_user: Callable[[str], Member],
    tmp_path: Path,
) -> None:
    ada = add_user("ada")
    with database.session() as session:
        admin = users.create_user("root", admin=True, session=session)
        _, root_token = users.create_token(admin, session=session)
        session.commit()
    create(base_url, {"name": "calc", "model": "scripted:demo"}, token=ada.token)
    as_root = {"ZERG_TOKEN": root_token}

    exported = api_cli("export", **as_root)
    path = write(tmp_path, {"version": 1, "agents": [{"name": "calc", "model": "scripted:demo"}]})
    imported = api_cli("import", path, **as_root)

    assert yaml.safe_load(exported.stdout) == {"version": 1, "agents": []}
    assert imported.stdout.startswith("created agent 'calc' (id 2)")
    listed = json.loads(api_cli("agents", "list", "--json", **as_root).stdout)
    owners = [agent["owner_id"] for agent in listed]
    assert owners == [ada.id, admin.id]
