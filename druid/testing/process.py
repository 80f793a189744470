"""A child process with a log file that dies with its parent and stops cleanly."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGKILL it if the parent goes away (even on kill -9).
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


class Process:
    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.env = env  # added to this process's environment
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None and self._popen.poll() is None else None

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        if self.alive():
            return
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("ab")
        self._popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=None if self.env is None else {**os.environ, **self.env},
            preexec_fn=die_with_parent,
            start_new_session=True,
        )

    def stop(self, timeout: float = 10) -> None:
        p = self._popen
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM and wait up to ``timeout`` seconds: the exit code, or None while it still runs."""
        p = self._popen
        if p is None:
            return None
        if p.poll() is None:
            p.terminate()
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL, for tests that simulate a crash."""
        if self._popen is not None and self._popen.poll() is None:
            self._popen.kill()
            self._popen.wait(10)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
