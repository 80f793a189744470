"""druid's controllers and their registration with the manager."""

from __future__ import annotations

from druid.config.operator import OperatorConfiguration
from druid.runtime.controller import Controller, generation_changed
from druid.runtime.manager import Manager


def register(manager: Manager, config: OperatorConfiguration) -> None:
    """Add every enabled controller to ``manager``, configured from ``config.controllers``."""
    from druid.controllers.observer import ETCDS, EtcdObserver

    manager.add(
        Controller(
            "etcd-observer",
            EtcdObserver(),
            manager.informers,
            workers=config.controllers.etcd.concurrent_syncs,
            registry=manager.registry,
        ).for_(ETCDS, predicate=generation_changed)
    )
