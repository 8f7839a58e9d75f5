"""Facts about network names and addresses that more than one layer needs."""

from ipaddress import ip_address


def is_loopback_host(host: str) -> bool:
    """Whether `host` (a name or address, bracketed or not, with or without a port, as in a
    Host header or a --host option) names this machine only: 127.0.0.0/8, ::1 or localhost.
    Any other name counts as open, since what it resolves to can change."""
    host = host.strip()
    if host.startswith("["):  # [::1] or [::1]:8000
        name = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # name:port or v4:port; a bare IPv6 address has more colons
        name = host.partition(":")[0]
    else:
        name = host
    if name.lower().rstrip(".") == "localhost":
        return True
    try:
        return ip_address(name).is_loopback
    except ValueError:
        return False
