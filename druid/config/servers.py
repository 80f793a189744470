"""Listen addresses from ``server``: upstream joins ``metrics.bindAddress`` and ``metrics.port`` unless
the address already has a ``:`` (then it is ``host:port`` and ``port`` is ignored)."""

from __future__ import annotations

from druid.config.operator import DEFAULT_METRICS_SERVER_PORT, DEFAULT_WEBHOOKS_SERVER_PORT, OperatorConfiguration
from druid.gocompat.net import split_host_port


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
