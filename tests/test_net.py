"""Which hosts name this machine only: for `zerg serve --host` and for Host headers."""

import pytest

from zerg.net import is_loopback_host


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:8000", True),
        ("127.10.20.30", True),
        ("::1", True),
        ("[::1]", True),
        ("[::1]:8000", True),
        ("localhost", True),
        ("localhost:8000", True),
        ("LocalHost.", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.20", False),
        ("10.0.0.5:8000", False),
        ("[::ffff:10.0.0.5]:80", False),
        ("fe80::1", False),
        ("128.0.0.1", False),
        ("zerg.example.com", False),
        ("evil.example:8000", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
