"""SIGTERM stops a process within its deadline even when the event loop is wedged (issue 13, finding 9).

Each case runs a small program in a subprocess that installs :class:`druid.runtime.shutdown.ShutdownGuard`
the way ``druid run`` does, signals itself, and reports; the parent measures how long it took to exit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

PROGRAM = textwrap.dedent(
    """
    import asyncio, os, signal, sys, time
    from druid.runtime.shutdown import ShutdownGuard

    async def main(mode):
        stop = asyncio.Event()
        guard = ShutdownGuard(stop, asyncio.get_running_loop(), deadline=1.5)
        guard.install()
        os.kill(os.getpid(), signal.SIGTERM)
        if mode == "wedged":          # a reconcile that never yields: the loop cannot run the stop
            while True:
                sum(range(1000))
        if mode == "hung":            # the orderly stop starts but its cleanup hangs
            await stop.wait()
            await asyncio.Event().wait()
        if mode == "twice":
            await stop.wait()
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(30)
        await stop.wait()             # orderly: the stop event is set, the program returns
        guard.uninstall()
        return 0

    sys.exit(asyncio.run(main(sys.argv[1])))
    """
)


def run(mode: str) -> tuple[int, float, str]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=30)
    return done.returncode, time.monotonic() - started, done.stderr


def test_orderly_stop_exits_normally() -> None:
    code, _, stderr = run("orderly")
    assert code == 0, stderr


def test_wedged_event_loop_is_left_at_the_deadline() -> None:
    code, took, stderr = run("wedged")
    assert code == 1, stderr
    assert "druid: shutdown did not finish within 1.5s; exiting" in stderr
    assert 1.5 <= took < 10, took


def test_hung_cleanup_is_left_at_the_deadline() -> None:
    code, took, stderr = run("hung")
    assert code == 1 and "did not finish within 1.5s" in stderr, stderr
    assert took < 10


def test_second_signal_exits_at_once() -> None:
    code, took, stderr = run("twice")
    assert code == 1 and "druid: second SIGTERM; exiting at once" in stderr, stderr
    assert took < 10
