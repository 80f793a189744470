"""The etcd-wrapper stand-in (hack/etcd-wrapper) against real etcd and a fake backup-restore sidecar.

The wrapper binary and etcd v3.5.27 run on 127.0.0.1 exactly as in an etcd pod: the fake backup-restore
(a threaded HTTP server in this module) answers ``/initialization/status`` (New until the wrapper triggers the
initialisation, then InProgress once, then Successful), records ``/initialization/start?mode=...`` and serves
a real etcd configuration from ``/config``. The data volume is ``<tmp>/data`` (etcd's data dir is its
``new.etcd``, the exit code file is ``<tmp>/data/exit_code``, as in the pods) and ``$HOME`` is ``<tmp>/home``.
Needs the binaries from ``hack/build-binaries.sh etcdpod etcd-wrapper``.
"""

from __future__ import annotations

import http.client
import os
import signal
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from druid.testing.binaries import Binaries
from druid.testing.controlplane import LOOPBACK, ControlPlaneError, free_port, wait_until
from druid.testing.pki import CertificateAuthority, KeyPair
from druid.testing.process import die_with_parent

BIN = Binaries.from_env()
_NEEDED = {"etcd-wrapper": BIN.etcd_wrapper, "etcd (pods)": BIN.etcd_pod, "etcdctl": BIN.etcdctl}
_MISSING = [f"{name} ({path})" for name, path in _NEEDED.items() if not path.exists()]
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason="not built (run hack/build-binaries.sh etcdpod etcd-wrapper): " + ", ".join(_MISSING),
)


# ----------------------------------------------------------------------------- fake backup-restore


class FakeBackupRestore:
    """Backup-restore's initialisation and config endpoints; every request path is recorded."""

    def __init__(self, config: str, tls: KeyPair | None = None) -> None:
        self.config = config
        self.calls: list[str] = []
        self.modes: list[str] = []
        self._status_after_start = ["InProgress", "Successful"]
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code, body = fake._answer(self.path)
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls.cert, tls.key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, path: str) -> tuple[int, str]:
        with self._lock:
            self.calls.append(path)
            url = urlsplit(path)
            if url.path == "/initialization/status":
                if not self.modes:
                    return 200, "New"
                return 200, self._status_after_start.pop(0) if len(self._status_after_start) > 1 else "Successful"
            if url.path == "/initialization/start":
                self.modes.append(parse_qs(url.query).get("mode", [""])[0])
                return 200, ""
            if url.path == "/config":
                return 200, self.config
            return 404, "not found"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------- etcd + wrapper


@dataclass
class TLSFiles:
    ca: KeyPair
    server: KeyPair
    client: KeyPair
    br_ca: KeyPair
    br_server: KeyPair


@dataclass
class Member:
    """One etcd member's ports, directories and configuration, like one etcd pod."""

    root: Path
    tls: TLSFiles | None = None
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    wrapper_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.volume.mkdir(parents=True, exist_ok=True)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def volume(self) -> Path:
        return self.root / "data"

    @property
    def data_dir(self) -> Path:
        return self.volume / "new.etcd"

    @property
    def exit_code(self) -> Path:
        return self.volume / "exit_code"

    @property
    def client_scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def client_url(self) -> str:
        return f"{self.client_scheme}://{LOOPBACK}:{self.client_port}"

    def config(self) -> str:
        peer = f"http://{LOOPBACK}:{self.peer_port}"
        lines = [
            "name: wrapper-test",
            f"data-dir: {self.data_dir}",
            f"listen-client-urls: {self.client_url}",
            f"advertise-client-urls: {self.client_url}",
            f"listen-peer-urls: {peer}",
            f"initial-advertise-peer-urls: {peer}",
            f"initial-cluster: wrapper-test={peer}",
            "initial-cluster-state: new",
            "initial-cluster-token: etcd-cluster",
            # druid's default: the wrapper's readiness check must not need etcd's JSON gateway.
            "enable-grpc-gateway: false",
            "log-level: warn",
        ]
        if self.tls:
            lines += [
                "client-transport-security:",
                f"  cert-file: {self.tls.server.cert}",
                f"  key-file: {self.tls.server.key}",
                f"  trusted-ca-file: {self.tls.ca.cert}",
                "  client-cert-auth: true",
                "  auto-tls: false",
            ]
        return "\n".join(lines) + "\n"

    def wrapper_argv(self, br: FakeBackupRestore) -> list[str]:
        argv = [str(BIN.etcd_wrapper), "start-etcd"]
        if self.tls:
            argv += [
                f"--backup-restore-host-port=localhost:{br.port}",
                "--backup-restore-tls-enabled=true",
                f"--backup-restore-ca-cert-bundle-path={self.tls.br_ca.cert}",
                "--etcd-server-name=localhost",
                f"--etcd-client-cert-path={self.tls.client.cert}",
                f"--etcd-client-key-path={self.tls.client.key}",
            ]
        else:
            argv += [f"--backup-restore-host-port={LOOPBACK}:{br.port}", "--backup-restore-tls-enabled=false"]
        return [
            *argv,
            f"--etcd-client-port={self.client_port}",
            f"--etcd-wrapper-port={self.wrapper_port}",
            f"--etcd-binary={BIN.etcd_pod}",
            f"--exit-code-file={self.exit_code}",
        ]

    def etcdctl(self, *args: str) -> str:
        argv = [str(BIN.etcdctl), f"--endpoints={self.client_url}", "--command-timeout=10s"]
        if self.tls:
            argv += [f"--cacert={self.tls.ca.cert}", f"--cert={self.tls.client.cert}", f"--key={self.tls.client.key}"]
        res = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=30, check=False)
        assert res.returncode == 0, f"etcdctl {' '.join(args)}: {res.stderr}"
        return res.stdout


class Wrapper:
    """The wrapper process (its own process group, which etcd, its child, shares)."""

    def __init__(self, member: Member, br: FakeBackupRestore, log: Path) -> None:
        self.member = member
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                member.wrapper_argv(br),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HOME": str(member.home)},
                preexec_fn=die_with_parent,
                start_new_session=True,
            )

    def etcd_pid(self) -> int | None:
        """The pid of the wrapper's etcd child, if it runs."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            if comm == "etcd" and int(rest[1]) == self.proc.pid and rest[0] != "Z":
                return int(entry.name)
        return None

    def wait_exit(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"wrapper did not exit within {timeout}s:\n{self.tail()}") from None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    # --- the wrapper's own endpoints

    def _conn(self) -> http.client.HTTPConnection:
        if self.member.tls:
            ctx = ssl.create_default_context(cafile=str(self.member.tls.ca.cert))
            return http.client.HTTPSConnection(LOOPBACK, self.member.wrapper_port, timeout=10, context=ctx)
        return http.client.HTTPConnection(LOOPBACK, self.member.wrapper_port, timeout=10)

    def request(self, method: str, path: str) -> int:
        conn = self._conn()
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def readyz(self) -> int:
        return self.request("GET", "/readyz")

    def wait_readyz(self, status: int, timeout: float = 60) -> None:
        try:
            wait_until(lambda: self.readyz() == status, timeout, f"/readyz {status}")
        except ControlPlaneError as e:
            raise AssertionError(f"{e}\nwrapper log:\n{self.tail()}") from None


@pytest.fixture
def procs() -> Iterator[list[Wrapper]]:
    """Every wrapper a test starts is killed (with its etcd) at the end, whatever happened."""
    started: list[Wrapper] = []
    yield started
    for w in started:
        w.kill()


@pytest.fixture
def servers() -> Iterator[list[FakeBackupRestore]]:
    started: list[FakeBackupRestore] = []
    yield started
    for s in started:
        s.close()


def _start(
    member: Member, procs: list[Wrapper], servers: list[FakeBackupRestore], log: str
) -> tuple[Wrapper, FakeBackupRestore]:
    tls = member.tls.br_server if member.tls else None
    br = FakeBackupRestore(member.config(), tls=tls)
    servers.append(br)
    w = Wrapper(member, br, member.root / log)
    procs.append(w)
    return w, br


def _assert_init_sequence(br: FakeBackupRestore, mode: str) -> None:
    calls = [urlsplit(c).path for c in br.calls]
    assert br.modes == [mode], br.calls
    assert calls[0] == "/initialization/status", br.calls
    start = br.calls.index(f"/initialization/start?mode={mode}")
    assert calls[start - 1] == "/initialization/status", br.calls
    assert calls[-1] == "/config" and calls.count("/config") == 1, br.calls
    assert set(calls[start + 1 : -1]) == {"/initialization/status"}, br.calls


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# ----------------------------------------------------------------------------- tests


def test_fresh_start_readiness_and_stop(tmp_path: Path, procs: list[Wrapper], servers: list[FakeBackupRestore]) -> None:
    m = Member(tmp_path)
    # A file an older run left world-readable: the wrapper makes everything in the data dir 0600.
    m.data_dir.mkdir(parents=True)
    (m.data_dir / "leftover").write_text("x")
    (m.data_dir / "leftover").chmod(0o644)

    w, br = _start(m, procs, servers, "wrapper.log")
    w.wait_readyz(200)

    _assert_init_sequence(br, "full")
    conf = m.home / "etcd.conf.yaml"
    assert conf.read_text() == m.config()
    assert _mode(conf) == 0o600
    assert _mode(m.data_dir / "leftover") == 0o600
    files = [p for p in m.data_dir.rglob("*") if p.is_file()]
    assert files and all(_mode(p) & 0o077 == 0 for p in files), {str(p): oct(_mode(p)) for p in files}

    m.etcdctl("put", "/wrapper/k", "v1")
    assert m.etcdctl("get", "/wrapper/k", "--print-value-only").strip() == "v1"

    # etcd stops answering (frozen): the next read times out and /readyz says 503; thawed, 200 again.
    etcd = w.etcd_pid()
    assert etcd is not None
    os.kill(etcd, signal.SIGSTOP)
    try:
        w.wait_readyz(503, timeout=30)
    finally:
        os.kill(etcd, signal.SIGCONT)
    w.wait_readyz(200, timeout=30)

    # GET /stop does nothing (as upstream); POST /stop stops etcd and the wrapper.
    assert w.request("GET", "/stop") == 200
    assert w.readyz() == 200
    assert w.request("POST", "/stop") == 200
    assert w.wait_exit() == 0, w.tail()
    assert w.etcd_pid() is None
    wait_until(lambda: not Path(f"/proc/{etcd}").exists(), 10, "etcd to be gone")
    with pytest.raises(OSError):
        w.readyz()
    assert not m.exit_code.exists(), "POST /stop must not record an exit code"


def test_signals_record_exit_code_and_restart_asks_for_sanity(
    tmp_path: Path, procs: list[Wrapper], servers: list[FakeBackupRestore]
) -> None:
    m = Member(tmp_path)
    w, br = _start(m, procs, servers, "wrapper-1.log")
    w.wait_readyz(200)
    _assert_init_sequence(br, "full")
    m.etcdctl("put", "/wrapper/k", "kept")
    etcd = w.etcd_pid()
    assert etcd is not None

    w.proc.send_signal(signal.SIGTERM)
    assert w.wait_exit() == 0, w.tail()
    assert m.exit_code.read_text() == "terminated"
    wait_until(lambda: not Path(f"/proc/{etcd}").exists(), 10, "etcd to be gone")

    # Restarted after a signal: sanity validation; once etcd serves, the exit code is forgotten.
    w2, br2 = _start(m, procs, servers, "wrapper-2.log")
    w2.wait_readyz(200)
    _assert_init_sequence(br2, "sanity")
    wait_until(lambda: not m.exit_code.exists(), 10, "exit_code to be removed")
    assert m.etcdctl("get", "/wrapper/k", "--print-value-only").strip() == "kept"

    w2.proc.send_signal(signal.SIGINT)
    assert w2.wait_exit() == 0, w2.tail()
    assert m.exit_code.read_text() == "interrupt"

    # A legacy validation_marker is removed; "interrupt" also means sanity.
    (m.volume / "validation_marker").write_text("stale")
    w3, br3 = _start(m, procs, servers, "wrapper-3.log")
    w3.wait_readyz(200)
    _assert_init_sequence(br3, "sanity")
    assert not (m.volume / "validation_marker").exists()
    w3.kill()

    # Killed (no signal recorded) after etcd had served: the next start asks for full validation.
    w4, br4 = _start(m, procs, servers, "wrapper-4.log")
    w4.wait_readyz(200)
    _assert_init_sequence(br4, "full")


def test_client_tls(tmp_path: Path, procs: list[Wrapper], servers: list[FakeBackupRestore]) -> None:
    ca = CertificateAuthority(tmp_path / "pki", "etcd-ca")
    br_ca = CertificateAuthority(tmp_path / "br-pki", "backup-restore-ca")
    tls = TLSFiles(
        ca=ca.pair,
        server=ca.issue("etcd-server", "etcd-server", dns=("localhost",), ips=(LOOPBACK,), server=True),
        client=ca.issue("etcd-client", "etcd-client", client=True),
        br_ca=br_ca.pair,
        br_server=br_ca.issue("br-server", "backup-restore", dns=("localhost",), server=True),
    )
    m = Member(tmp_path / "member", tls=tls)
    w, br = _start(m, procs, servers, "wrapper.log")

    # /readyz over HTTPS with etcd's server certificate (verified against the etcd CA).
    w.wait_readyz(200)
    _assert_init_sequence(br, "full")
    plain = http.client.HTTPConnection(LOOPBACK, m.wrapper_port, timeout=10)
    try:
        plain.request("GET", "/readyz")
        assert plain.getresponse().status == 400  # Go: "client sent an HTTP request to an HTTPS server"
    finally:
        plain.close()

    m.etcdctl("put", "/wrapper/tls", "yes")
    assert m.etcdctl("get", "/wrapper/tls", "--print-value-only").strip() == "yes"

    w.proc.send_signal(signal.SIGTERM)
    assert w.wait_exit() == 0, w.tail()
    assert m.exit_code.read_text() == "terminated"
