"""runtime.certwatcher: rotated serving certificates are presented to new connections without a restart; a
half-written or mismatched pair never replaces the certificate in use."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from druid.runtime.certwatcher import CertWatcher
from druid.testing.pki import CertificateAuthority, KeyPair


def install(pair: KeyPair, directory: Path, *, bump: int) -> None:
    for src, name in ((pair.cert, "tls.crt"), (pair.key, "tls.key")):
        shutil.copyfile(src, directory / name)
        stamp = os.stat(directory / name).st_mtime_ns + bump * 1_000_000_000  # distinct even on coarse clocks
        os.utime(directory / name, ns=(stamp, stamp))


async def served_cn(port: int, ca: Path) -> str:
    client = ssl.create_default_context(cafile=str(ca))
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    cn = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return str(cn)


async def test_new_connections_get_the_rotated_certificate_and_bad_pairs_are_ignored(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca")
    first = ca.issue("first", "first", ips=("127.0.0.1",), server=True)
    second = ca.issue("second", "second", ips=("127.0.0.1",), server=True)
    third = ca.issue("third", "third", ips=("127.0.0.1",), server=True)
    live = tmp_path / "live"
    live.mkdir()
    install(first, live, bump=0)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(live / "tls.crt"), str(live / "tls.key"))
    told: list[bool] = []
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:  # the first wait of run() sees a rotation, the second ends it
        sleeps.append(seconds)
        if len(sleeps) == 1:
            install(third, live, bump=10)
        else:
            raise asyncio.CancelledError

    watcher = CertWatcher(context, live / "tls.crt", live / "tls.key", sleep=sleep, on_reload=told.append)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await served_cn(port, ca.pair.cert) == "first"
        assert watcher.check() is False, "unchanged files: nothing to do"

        # A rotation half done: the new certificate next to the old key. Refused; the old pair keeps serving.
        shutil.copyfile(second.cert, live / "tls.crt")
        os.utime(live / "tls.crt", ns=(1, 2_000_000_000_000_000_000))
        assert watcher.check() is False and watcher.failures == 1
        assert await served_cn(port, ca.pair.cert) == "first"
        assert watcher.check() is False and watcher.failures == 1, "the same bad pair is not tried again"

        install(second, live, bump=5)  # the key arrives: the complete pair is loaded
        assert watcher.check() is True
        assert await served_cn(port, ca.pair.cert) == "second"

        (live / "tls.key").unlink()  # a file missing for a moment changes nothing
        assert watcher.check() is False and await served_cn(port, ca.pair.cert) == "second"

        try:
            await watcher.run()
        except asyncio.CancelledError:
            pass
        assert sleeps == [watcher.interval, watcher.interval]
        assert await served_cn(port, ca.pair.cert) == "third"
        assert (watcher.reloads, watcher.failures, told) == (2, 1, [False, True, True])
    finally:
        server.close()
        await server.wait_closed()
