"""`zerg tokens`: create (printed once), list (never the token), revoke; and how bad input fails."""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.cli.runner import Cli, error_line, json_output
from zerg import clock
from zerg.db import Database
from zerg.errors import Unauthorized
from zerg.services import users as service

EXIT_NOT_FOUND = 3
EXIT_INVALID = 4
TOKEN_FIELDS = {
    "prefix",
    "user",
    "name",
    "status",
    "created_at",
    "last_used_at",
    "expires_at",
    "revoked_at",
}


@pytest.fixture
def frozen_clock() -> Iterator[list[datetime]]:
    """The time every command sees; tests move it by replacing the one item."""
    now = [datetime(2026, 6, 1, 12, 0, tzinfo=UTC)]
    clock.set_clock(lambda: now[0])
    yield now
    clock.set_clock(None)


def add_user(cli: Cli, name: str, *options: str) -> str:
    result = cli("users", "create", name, *options)
    assert result.exit_code == 0, (result.stderr, result.exception)
    return result.stdout.strip()


def create(cli: Cli, *options: str) -> str:
    result = cli("tokens", "create", *options)
    assert result.exit_code == 0, (result.stderr, result.exception)
    return result.stdout.strip()


def test_create_prints_the_token_once_for_the_only_admin(cli: Cli, database: Database) -> None:
    add_user(cli, "alice", "--admin")
    add_user(cli, "bob")

    result = cli("tokens", "create", "--name", "laptop")

    assert result.exit_code == 0, (result.stderr, result.exception)
    token = result.stdout.strip()
    assert result.stdout == f"{token}\n"
    assert token.startswith("zerg_")
    assert token not in result.stderr
    assert f"created API token {token[:17]}… for 'alice'" in result.stderr
    assert "will not be shown again" in result.stderr
    assert "Authorization: Bearer <token>" in result.stderr
    with database.session() as session:
        assert service.authenticate(token, session=session).name == "alice"


def test_create_json_for_a_named_user_with_an_expiry(
    cli: Cli, database: Database, frozen_clock: list[datetime]
) -> None:
    add_user(cli, "alice", "--admin")
    add_user(cli, "bob")

    result = cli("tokens", "create", "--user", "bob", "--name", "ci", "--expires", "30d", "--json")

    created = json_output(result)
    assert set(created) == TOKEN_FIELDS | {"token"}
    assert created == {
        "prefix": created["token"][:17],
        "user": "bob",
        "name": "ci",
        "status": "active",
        "created_at": "2026-06-01T12:00:00Z",
        "last_used_at": None,
        "expires_at": "2026-07-01T12:00:00Z",
        "revoked_at": None,
        "token": created["token"],
    }
    assert "expires 2026-07-01 12:00 UTC" in result.stderr
    assert created["token"] not in result.stderr
    with database.session() as session:
        assert service.authenticate(created["token"], session=session).name == "bob"


def test_create_without_user_needs_exactly_one_admin(bare_cli: Cli) -> None:
    # No user yet: the database is migrated first, then the command says what to do.
    line = error_line(bare_cli("tokens", "create"), EXIT_INVALID)
    assert "--user NAME" in line
    assert "zerg users create NAME --admin" in line

    add_user(bare_cli, "alice", "--admin")
    add_user(bare_cli, "carol", "--admin")
    line = error_line(bare_cli("tokens", "create"), EXIT_INVALID)

    assert line == "error: 2 admins (alice, carol): name the token's user with --user NAME"


def test_create_for_an_unknown_user_is_not_found(cli: Cli) -> None:
    line = error_line(cli("tokens", "create", "--user", "nobody"), EXIT_NOT_FOUND)

    assert line == "error: no user named 'nobody'; `zerg users list` shows them"


def test_create_for_a_disabled_user_is_refused(cli: Cli) -> None:
    add_user(cli, "bob")
    cli("users", "disable", "bob")

    line = error_line(cli("tokens", "create", "--user", "bob"), EXIT_INVALID)

    assert line == "error: user 'bob' is disabled: a token of theirs would not work"
    assert json_output(cli("tokens", "list", "--json", "--user", "bob"))[0]["user"] == "bob"
    assert len(json_output(cli("tokens", "list", "--json"))) == 1


@pytest.mark.parametrize("expires", ["30", "d", "30x", "-1d", "1.5d", "30 days", ""])
def test_create_refuses_an_unreadable_expiry(cli: Cli, expires: str) -> None:
    add_user(cli, "alice", "--admin")

    line = error_line(cli("tokens", "create", "--expires", expires), EXIT_INVALID)

    assert line.startswith(f"error: invalid --expires: {expires!r} is not a duration: ")
    assert "e.g. 90m, 12h, 30d or 2w" in line
    assert len(json_output(cli("tokens", "list", "--json"))) == 1


def test_create_refuses_an_expiry_of_zero(cli: Cli) -> None:
    add_user(cli, "alice", "--admin")

    line = error_line(cli("tokens", "create", "--expires", "0d"), EXIT_INVALID)

    assert line == "error: a token must expire in the future"


@pytest.mark.parametrize(("expires", "delta"), [("90m", 90), ("12h", 720), ("2w", 20160)])
def test_create_reads_every_unit(
    cli: Cli, frozen_clock: list[datetime], expires: str, delta: int
) -> None:
    add_user(cli, "alice", "--admin")

    created = json_output(cli("tokens", "create", "--expires", expires, "--json"))

    expected = frozen_clock[0] + timedelta(minutes=delta)
    assert datetime.fromisoformat(created["expires_at"]) == expected


def test_list_shows_prefixes_never_tokens(cli: Cli, frozen_clock: list[datetime]) -> None:
    first = add_user(cli, "alice", "--admin")
    bobs = add_user(cli, "bob")
    second = create(cli, "--user", "bob", "--name", "build box", "--expires", "1h")
    frozen_clock[0] += timedelta(minutes=5)
    third = create(cli, "--name", "old laptop")
    cli("tokens", "revoke", third[:17])
    frozen_clock[0] += timedelta(hours=1)

    table = cli("tokens", "list")
    listed = json_output(cli("tokens", "list", "--json"))

    assert table.exit_code == 0 and table.stderr == ""
    assert table.stdout.splitlines()[0].split() == [
        "PREFIX", "USER", "STATUS", "CREATED", "LAST", "USED", "EXPIRES", "NAME",
    ]  # fmt: skip
    assert [line.split() for line in table.stdout.splitlines()[1:]] == [
        [first[:17], "alice", "active", "2026-06-01", "12:00", "-", "-", "-"],
        [bobs[:17], "bob", "active", "2026-06-01", "12:00", "-", "-", "-"],
        [second[:17], "bob", "expired", "2026-06-01", "12:00", "-", "2026-06-01", "13:00",
         "build", "box"],
        [third[:17], "alice", "revoked", "2026-06-01", "12:05", "-", "-", "old", "laptop"],
    ]  # fmt: skip
    assert [set(t) for t in listed] == [TOKEN_FIELDS] * 4
    assert [(t["prefix"], t["user"], t["status"]) for t in listed] == [
        (first[:17], "alice", "active"),
        (bobs[:17], "bob", "active"),
        (second[:17], "bob", "expired"),
        (third[:17], "alice", "revoked"),
    ]
    assert listed[3]["revoked_at"] == "2026-06-01T12:05:00Z"
    for token in (first, bobs, second, third):
        assert token not in table.stdout
        assert token[17:] not in cli("tokens", "list", "--json").stdout


def test_list_for_one_user(cli: Cli) -> None:
    add_user(cli, "alice", "--admin")
    bobs = add_user(cli, "bob")

    listed = json_output(cli("tokens", "list", "--user", "bob", "--json"))

    assert [t["prefix"] for t in listed] == [bobs[:17]]
    line = error_line(cli("tokens", "list", "--user", "nobody"), EXIT_NOT_FOUND)
    assert line == "error: no user named 'nobody'; `zerg users list` shows them"


def test_list_shows_when_a_token_was_last_used(
    cli: Cli, database: Database, frozen_clock: list[datetime]
) -> None:
    token = add_user(cli, "alice", "--admin")
    frozen_clock[0] += timedelta(minutes=3)
    with database.session() as session:  # as a request does: authenticate, then commit
        service.authenticate(token, session=session)
        session.commit()

    listed = json_output(cli("tokens", "list", "--json"))

    assert listed[0]["last_used_at"] == "2026-06-01T12:03:00Z"


def test_an_expired_token_is_refused(
    cli: Cli, database: Database, frozen_clock: list[datetime]
) -> None:
    add_user(cli, "alice", "--admin")
    token = create(cli, "--expires", "90m")
    frozen_clock[0] += timedelta(minutes=90)

    with database.session() as session, pytest.raises(Unauthorized, match="expired"):
        service.authenticate(token, session=session)


def test_revoke_stops_the_token_at_once(cli: Cli, database: Database) -> None:
    add_user(cli, "alice", "--admin")
    kept = create(cli)
    revoked = create(cli)

    result = cli("tokens", "revoke", revoked[:17])

    assert result.exit_code == 0, (result.stderr, result.exception)
    assert result.stdout == ""
    assert result.stderr == f"revoked API token {revoked[:17]}…\n"
    with database.session() as session:
        with pytest.raises(Unauthorized, match="was revoked"):
            service.authenticate(revoked, session=session)
        assert service.authenticate(kept, session=session).name == "alice"


def test_revoke_twice_keeps_it_revoked(cli: Cli) -> None:
    token = add_user(cli, "alice", "--admin")
    assert cli("tokens", "revoke", token[:17]).exit_code == 0

    assert cli("tokens", "revoke", token[:17]).exit_code == 0

    assert json_output(cli("tokens", "list", "--json"))[0]["status"] == "revoked"


@pytest.mark.parametrize("prefix", ["zerg_nosuchtoken", "nosuch", "zerg"])
def test_revoke_an_unknown_prefix_is_not_found(cli: Cli, prefix: str) -> None:
    add_user(cli, "alice", "--admin")

    line = error_line(cli("tokens", "revoke", prefix), EXIT_NOT_FOUND)

    assert line == f"error: no token starts with {prefix!r}; `zerg tokens list` shows them"
    assert json_output(cli("tokens", "list", "--json"))[0]["status"] == "active"


def test_revoke_an_ambiguous_prefix_revokes_nothing(cli: Cli) -> None:
    add_user(cli, "alice", "--admin")
    create(cli)

    line = error_line(cli("tokens", "revoke", "zerg_"), EXIT_INVALID)

    assert line == "error: 2 tokens start with 'zerg_'; give more of it"
    assert {t["status"] for t in json_output(cli("tokens", "list", "--json"))} == {"active"}


def test_no_token_reaches_stderr_or_a_log(
    cli: Cli, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the creating command prints a token, and only on stdout."""
    # An in-process `zerg serve` configures the `zerg` logger not to propagate to caplog.
    monkeypatch.setattr(logging.getLogger("zerg"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    creations = [cli("users", "create", "alice", "--admin"), cli("tokens", "create", "--json")]
    tokens = [creations[0].stdout.strip(), json_output(creations[1])["token"]]
    others = [
        cli("tokens", "list"),
        cli("tokens", "list", "--json"),
        cli("users", "list", "--json"),
        cli("tokens", "revoke", tokens[0][:17]),
        cli("users", "disable", "alice"),
        cli("tokens", "list"),
    ]

    for result in creations + others:
        assert result.exit_code == 0, (result.stderr, result.exception)
        for token in tokens:
            assert token not in result.stderr
    # The part after the prefix is the secret: nothing but its creation prints it.
    for result in others:
        for token in tokens:
            assert token[17:] not in result.stdout
    for token in tokens:
        assert token[17:] not in caplog.text
