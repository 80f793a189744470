"""Stopping on SIGTERM/SIGINT within a deadline, whatever state the event loop is in.

:class:`ShutdownGuard` installs plain ``signal.signal`` handlers (they run in the main thread between
bytecodes, even while the event loop is busy, unlike ``loop.add_signal_handler`` callbacks, which wait
for the loop). The first signal sets the stop event through ``loop.call_soon_threadsafe`` — the orderly
path (controllers drain, the lease is released, servers stop) — and arms a timer thread: if the process
is still running ``deadline`` seconds later (a wedged loop, a hung cleanup) it prints one line and exits
at once with :data:`EXIT_FORCED`. A second signal exits at once too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

EXIT_FORCED = 1
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ShutdownGuard:
    def __init__(
        self,
        stop: asyncio.Event,
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        *,
        exit_now: Callable[[int], None] = os._exit,
    ) -> None:
        self.stop, self.loop, self.deadline = stop, loop, deadline
        self._exit_now = exit_now
        self._timer: threading.Timer | None = None

    def install(self) -> None:
        for sig in SIGNALS:
            signal.signal(sig, self._on_signal)

    def uninstall(self) -> None:
        """Back to the default handlers and no timer (the orderly stop finished in time)."""
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        if self._timer is not None:
            self._timer.cancel()

    @property
    def armed(self) -> bool:
        return self._timer is not None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._timer is not None:
            self._force(f"druid: second {signal.Signals(signum).name}; exiting at once")
            return
        self._timer = threading.Timer(
            self.deadline, self._force, (f"druid: shutdown did not finish within {self.deadline:g}s; exiting",)
        )
        self._timer.daemon = True
        self._timer.start()
        self.loop.call_soon_threadsafe(self.stop.set)

    def _force(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        self._exit_now(EXIT_FORCED)
