"""Listen addresses from ``server``: upstream joins ``metrics.bindAddress`` and ``metrics.port`` unless
the address already has a ``:`` (then it is ``host:port`` and ``port`` is ignored)."""

from __future__ import annotations

from druid.config.operator import DEFAULT_METRICS_SERVER_PORT, DEFAULT_WEBHOOKS_SERVER_PORT, OperatorConfiguration


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


def metrics_listen(cfg: OperatorConfiguration) -> tuple[str, int]:
    """(host, port) of the metrics server; "" host is every interface, port 0 any free port."""
    m = cfg.server.metrics
    if ":" in m.bind_address:
        return split_host_port(m.bind_address)
    return m.bind_address, DEFAULT_METRICS_SERVER_PORT if m.port is None else m.port


def webhooks_listen(cfg: OperatorConfiguration) -> tuple[str, int]:
    """(host, port) of the webhook server (controller-runtime's Host and Port)."""
    w = cfg.server.webhooks
    return w.bind_address, DEFAULT_WEBHOOKS_SERVER_PORT if w.port is None else w.port
