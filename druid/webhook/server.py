"""The webhook server: ``/webhooks/etcdcomponents`` (component protection) and ``/webhooks/etcds`` (the
Etcd admission policy, druid extension) over HTTPS, AdmissionReview in and out.

Like controller-runtime's ``admission.Webhook``: the body must be ``application/json`` (at most 7 MiB),
v1 and v1beta1 AdmissionReviews are accepted and answered in the same version, the request uid is echoed,
transport and decode problems are answered as an errored AdmissionResponse (HTTP 200, code 400/413), and
an exception in the handler becomes ``panic: <error> [recovered]`` with code 500 (RecoverPanic).
The serving certificate is ``tls.crt``/``tls.key`` in ``server.webhooks.serverCertDir``; rotated files are
picked up within 10 s without a restart (``runtime.certwatcher``, as controller-runtime's certificate watcher).
With ``server.webhooks.clientCAFile`` (druid extension) only callers with a client certificate signed by
that CA get past the TLS handshake.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from druid.api.admission import AdmissionPolicy
from druid.config.operator import OperatorConfiguration
from druid.config.servers import webhooks_listen
from druid.runtime.certwatcher import CertWatcher
from druid.runtime.manager import Manager
from druid.webhook.configuration import ETCDS_WEBHOOK_PATH, WEBHOOK_PATH
from druid.webhook.etcdadmission import review_etcd
from druid.webhook.lookups import CacheLookups
from druid.webhook.protection import Decision, Lookups, Policy, gk_string, group_kind, review

log = structlog.get_logger(__name__)

MAX_REQUEST_SIZE = 7 * 1024 * 1024
BODY_TIMEOUT = 10.0  # the API server gives up on a webhook after timeoutSeconds (10) anyway
REVIEW_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
REVIEW_KIND = "AdmissionReview"
_POLICY: web.AppKey[Policy] = web.AppKey("policy")
_LOOKUPS: web.AppKey[Lookups] = web.AppKey("lookups")
_ADMISSION: web.AppKey[AdmissionPolicy] = web.AppKey("admission")


def server_ssl_context(cert_dir: str | Path, client_ca: str | Path | None = None) -> ssl.SSLContext:
    """TLS ≥ 1.2 with ``<cert_dir>/tls.crt`` and ``tls.key`` (raises if they are missing or do not match);
    with ``client_ca`` every client must present a certificate it signed (the handshake fails otherwise, so
    an unauthenticated caller gets no answer at all)."""
    directory = Path(cert_dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(directory / "tls.crt"), str(directory / "tls.key"))
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            context.load_verify_locations(cafile=str(client_ca))
        except OSError as e:  # name the file (ssl's errors do not)
            raise OSError(e.errno, e.strerror or str(e), str(client_ca)) from e
    return context


def _answer(response: dict[str, Any], api_version: str | None = None) -> web.Response:
    review_out: dict[str, Any] = {"response": response}
    if api_version is not None:  # errors before decoding carry no type (writeResponse in controller-runtime)
        review_out = {"kind": REVIEW_KIND, "apiVersion": api_version, **review_out}
    return web.json_response(review_out)


def _errored(code: int, message: str) -> web.Response:
    return _answer(Decision.errored(code, message).response(""))


async def _read_body(request: web.Request) -> bytes | None:
    """The body, or None when it exceeds MAX_REQUEST_SIZE."""
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_REQUEST_SIZE:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def handle(request: web.Request) -> web.Response:
    """``/webhooks/etcdcomponents``: the component-protection decision."""
    return await _serve(request, lambda admission: review(admission, request.app[_POLICY], request.app[_LOOKUPS]))


async def handle_etcds(request: web.Request) -> web.Response:
    """``/webhooks/etcds``: the admission policy for Etcds."""
    policy = request.app[_POLICY]
    return await _serve(request, lambda admission: review_etcd(admission, request.app[_ADMISSION], policy.reconciler))


async def _serve(request: web.Request, decide: Callable[[dict[str, Any]], Decision]) -> web.Response:
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            body = await _read_body(request)
    except TimeoutError:
        return _errored(408, f"the request body did not arrive within {BODY_TIMEOUT:.0f}s")
    if body is None:
        return _errored(413, f"request entity is too large; limit is {MAX_REQUEST_SIZE} bytes")
    if not body:
        return _errored(400, "request body is empty")
    content_type = request.headers.get("Content-Type", "")
    if content_type != "application/json":
        return _errored(400, f"contentType={content_type}, expected application/json")
    try:
        parsed = json.loads(body)
    except ValueError as e:
        return _errored(400, f"couldn't decode the AdmissionReview: {e}")
    if not isinstance(parsed, dict):
        return _errored(400, "couldn't decode the AdmissionReview: not a JSON object")
    api_version = parsed.get("apiVersion") or REVIEW_VERSIONS[0]
    if api_version not in REVIEW_VERSIONS or parsed.get("kind", REVIEW_KIND) != REVIEW_KIND:
        return _errored(400, f"unexpected object {api_version}, Kind={parsed.get('kind')}: expected an AdmissionReview")
    admission = parsed.get("request")
    if not isinstance(admission, dict):
        admission = {}
    uid = str(admission.get("uid") or "")
    try:
        decision = decide(admission)
    except Exception as e:
        log.exception("webhook failed", path=request.path, uid=uid)
        decision = Decision.errored(500, f"panic: {e} [recovered]")
    _log(admission, decision)
    return _answer(decision.response(uid), api_version)


def _log(admission: dict[str, Any], decision: Decision) -> None:
    user_info = admission.get("userInfo")
    fields = {
        "operation": admission.get("operation"),
        "resource_group_kind": gk_string(group_kind(admission)),
        "namespace": admission.get("namespace"),
        "name": admission.get("name"),
        "user": user_info.get("username") if isinstance(user_info, dict) else None,
        "allowed": decision.allowed,
        "code": decision.code,
    }
    if decision.allowed:
        log.debug("etcd-components webhook", message=decision.message, **fields)
    else:
        log.info("etcd-components webhook refused a request", message=decision.message, **fields)


def webhook_app(policy: Policy, lookups: Lookups, admission: AdmissionPolicy | None = None) -> web.Application:
    """The aiohttp app serving :data:`WEBHOOK_PATH` and :data:`ETCDS_WEBHOOK_PATH` (any method, like
    controller-runtime's handler); ``admission`` defaults to allowing everything."""
    app = web.Application()
    app[_POLICY] = policy
    app[_LOOKUPS] = lookups
    app[_ADMISSION] = admission or AdmissionPolicy()
    app.router.add_route("*", WEBHOOK_PATH, handle)
    app.router.add_route("*", ETCDS_WEBHOOK_PATH, handle_etcds)
    return app


def add_webhook(
    manager: Manager, config: OperatorConfiguration, namespace: str | None = None
) -> web.Application | None:
    """Register the etcd-components webhook server with ``manager`` when it is enabled (else None).

    Serves on ``server.webhooks`` (bindAddress/port, certificates in serverCertDir) on every replica;
    answers from the informers the Etcd controller shares (``namespace`` confines them, as it does the
    controllers'). Raises if the certificate files cannot be loaded.
    """
    cfg = config.webhooks.etcd_component_protection
    if not cfg.enabled:
        return None
    policy = Policy.from_config(cfg)
    if not policy.reconciler:
        raise ValueError("etcdComponentProtection needs serviceAccountInfo or reconcilerServiceAccountFQDN")
    context = server_ssl_context(config.server.webhooks.server_cert_dir, config.server.webhooks.client_ca_file)
    app = webhook_app(policy, CacheLookups.of(manager.informers, namespace), config.admission_policy())
    address, port = webhooks_listen(config)
    manager.add_server(app, address, port, ssl_context=context)
    directory = Path(config.server.webhooks.server_cert_dir)
    manager.add_task(CertWatcher(context, directory / "tls.crt", directory / "tls.key").run)
    log.info("registering the etcd-components webhook", path=WEBHOOK_PATH, address=address, port=port)
    return app
