"""druid's controllers and their registration with the manager."""

from __future__ import annotations

import argparse

from druid.runtime.controller import Controller, generation_changed
from druid.runtime.manager import Manager


def register(manager: Manager, args: argparse.Namespace) -> None:
    """Add every enabled controller to ``manager``."""
    from druid.controllers.observer import ETCDS, EtcdObserver

    manager.add(
        Controller("etcd-observer", EtcdObserver(), manager.informers, registry=manager.registry).for_(
            ETCDS, predicate=generation_changed
        )
    )
