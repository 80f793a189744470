"""Go's ``net`` address handling where druid must accept and reject exactly what etcd-druid does."""

from __future__ import annotations


def split_host_port(address: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` like Go's ``net.SplitHostPort``, with a numeric port."""
    if address.startswith("["):
        host, sep, rest = address[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{address!r} is not host:port")
        port = rest[1:]
    else:
        host, sep, port = address.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"{address!r} is not host:port (too many colons; bracket IPv6 addresses)")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r} has no valid port")
    return host, int(port)
