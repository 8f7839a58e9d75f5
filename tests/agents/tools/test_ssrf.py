from ipaddress import ip_address, ip_network

import pytest

from zerg.agents.tools.ssrf import refusal_reason


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "2606:4700:4700::1111",
        "2a00:1450:4007:80e::200e",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ip_address(address)) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("0.0.0.0", "0.0.0.0 is an unspecified ('this network') address (0.0.0.0/8)"),
        ("10.1.2.3", "10.1.2.3 is a private address (10.0.0.0/8)"),
        ("172.31.255.255", "172.31.255.255 is a private address (172.16.0.0/12)"),
        ("192.168.0.1", "192.168.0.1 is a private address (192.168.0.0/16)"),
        ("127.0.0.1", "127.0.0.1 is a loopback address (127.0.0.0/8)"),
        ("127.255.0.9", "127.255.0.9 is a loopback address (127.0.0.0/8)"),
        ("169.254.169.254", "169.254.169.254 is a link-local (cloud metadata) address"),
        ("100.100.100.200", "100.100.100.200 is a shared (carrier-grade NAT) address"),
        ("192.0.2.10", "192.0.2.10 is a documentation address (192.0.2.0/24)"),
        ("198.18.0.1", "198.18.0.1 is a benchmarking address (198.18.0.0/15)"),
        ("239.255.255.250", "239.255.255.250 is a multicast address (224.0.0.0/4)"),
        ("255.255.255.255", "255.255.255.255 is a reserved or broadcast address"),
        ("::", ":: is an unspecified address (::/128)"),
        ("::1", "::1 is a loopback address (::1/128)"),
        ("::ffff:127.0.0.1", "127.0.0.1 is a loopback address (127.0.0.0/8)"),
        ("::ffff:a9fe:a9fe", "169.254.169.254 is a link-local (cloud metadata) address"),
        ("::127.0.0.1", "::7f00:1 is a reserved address (::/8)"),
        ("64:ff9b::10.0.0.1", "10.0.0.1 is a private address (10.0.0.0/8)"),
        ("2002:a9fe:a9fe::1", "169.254.169.254 is a link-local (cloud metadata) address"),
        ("2001:db8::1", "2001:db8::1 is a documentation address (2001:db8::/32)"),
        ("fd00:ec2::254", "fd00:ec2::254 is a unique local (private) address (fc00::/7)"),
        ("fe80::a9fe:a9fe", "fe80::a9fe:a9fe is a link-local address (fe80::/10)"),
        ("ff02::1", "ff02::1 is a multicast address (ff00::/8)"),
    ],
)
def test_non_public_addresses_are_refused_with_a_reason(address: str, reason: str) -> None:
    assert (refusal_reason(ip_address(address)) or "").startswith(reason)


@pytest.mark.parametrize(
    ("address", "allowed", "passes"),
    [
        ("127.0.0.1", "127.0.0.1/32", True),
        ("::ffff:127.0.0.1", "127.0.0.1/32", True),
        ("127.0.0.2", "127.0.0.1/32", False),
        ("10.20.30.40", "10.20.0.0/16", True),
        ("10.21.0.1", "10.20.0.0/16", False),
        ("fd12:3456::1", "fd12:3456::/32", True),
        ("169.254.169.254", "10.0.0.0/8", False),
    ],
)
def test_allowed_networks_open_exactly_themselves(address: str, allowed: str, passes: bool) -> None:
    reason = refusal_reason(ip_address(address), [ip_network(allowed)])
    assert (reason is None) is passes
