"""The API client druid uses: raw JSON over kubernetes-asyncio's transport, every call with a timeout.

kubernetes-asyncio handles configuration, TLS, auth and token refresh; druid uses its generated
methods only for typed reads in tests and goes through :class:`Kube` everywhere else, so objects stay
plain dicts (no model deserialization), content types are always explicit, and errors are classified
once (:class:`ApiError`).

Requests go straight to an aiohttp session sharing kubernetes-asyncio's connector (its TLS context and
connection pool) with the configuration's auth applied per request, not through ``ApiClient.call_api``:
that path walks every body to sanitize it and, with ``trust_env``, looks proxies and netrc up again in a
thread for every request. Proxies are read from the environment once (``HTTPS_PROXY``/``NO_PROXY``, as
client-go does); bodies are encoded once, by :mod:`druid.runtime.jsonc`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from kubernetes_asyncio import client, config
from prometheus_client import CollectorRegistry, Counter
from yarl import URL

from druid.runtime import jsonc, metrics, patch
from druid.runtime.objects import Obj, ResourceRef
from druid.runtime.ratelimit import BucketRateLimiter

DEFAULT_TIMEOUT = 30.0
JSON = "application/json"
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
"""``accept`` for metadata-only reads: objects (single, in lists, in watch events) come as PartialObjectMetadata."""
METADATA_ONLY_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
WATCH_CONNECT_TIMEOUT = 10.0
WATCH_IDLE_TIMEOUT = 90.0


class ApiError(Exception):
    """A non-2xx answer from the API server (``status`` 0 for a transport failure)."""

    def __init__(
        self, status: int, reason: str, message: str, body: Obj | None = None, retry_after: float | None = None
    ):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}
        self.retry_after = retry_after

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410

    @property
    def invalid(self) -> bool:
        return self.status == 422

    @property
    def throttled(self) -> bool:
        return self.status == 429

    @property
    def retryable(self) -> bool:
        return self.status in (0, 429) or self.status >= 500


def _create_rest_metrics(registry: CollectorRegistry) -> Counter:
    return Counter(
        "rest_client_requests_total",
        "Number of HTTP requests, partitioned by status code, method, and host.",
        ["code", "method", "host"],
        registry=registry,
    )


def rest_requests(registry: CollectorRegistry | None = None) -> Counter:
    return metrics.families(registry, _create_rest_metrics)


def kubeconfig_path(kubeconfig: str | None = None) -> str | None:
    """The kubeconfig file :func:`load_configuration` reads: ``kubeconfig``, else ``$KUBECONFIG``; None means
    in-cluster when running in a pod, else the kubeconfig loader's default (``~/.kube/config``)."""
    return kubeconfig or os.environ.get("KUBECONFIG")


def in_cluster(kubeconfig: str | None = None) -> bool:
    return kubeconfig_path(kubeconfig) is None and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


async def load_configuration(kubeconfig: str | None = None, context: str | None = None) -> client.Configuration:
    """In-cluster when running in a pod and no kubeconfig is named; otherwise the kubeconfig file."""
    cfg = client.Configuration()
    path = kubeconfig_path(kubeconfig)
    if in_cluster(kubeconfig):
        config.load_incluster_config(client_configuration=cfg)
    else:
        await config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
    return cfg


def _proxy_for(cfg: client.Configuration) -> tuple[str | None, Any]:
    """The configured proxy, else the environment's for the API server's URL (read once), else none."""
    if cfg.proxy:
        return cfg.proxy, None
    try:
        proxy, auth = aiohttp.helpers.get_env_proxy_for_url(URL(cfg.host or ""))
    except LookupError:
        return None, None
    return str(proxy), auth


def _client_timeout(timeout: Any) -> aiohttp.ClientTimeout:
    """A number is a total timeout; a pair is (connect, socket read), for long-lived watches."""
    if isinstance(timeout, tuple):
        connect, read = timeout
        return aiohttp.ClientTimeout(connect=connect, sock_connect=connect, sock_read=read)
    return aiohttp.ClientTimeout(total=timeout)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


async def error_from_response(resp: aiohttp.ClientResponse) -> ApiError:
    text = await resp.text()
    try:
        body = jsonc.loads(text)
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    reason = body.get("reason") if isinstance(body, dict) else None
    return ApiError(resp.status, reason or resp.reason or "", message or text[:500], body, _retry_after(resp.headers))


class TokenBucket(BucketRateLimiter):
    """Client-side rate limit like client-go's (``rest.Config`` QPS/Burst, x/time/rate reservations): the
    workqueue's token-bucket arithmetic, awaited.

    Up to ``burst`` requests go at once, then ``qps`` per second; each :meth:`acquire` reserves a token
    and sleeps until it is due, so waiters are served in arrival order.
    """

    def reserve(self) -> float:
        """Take one token; return how long to wait (seconds) before using it."""
        return self.when(None)

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                self._tokens += 1  # give the unused reservation back
                raise


def resource_of(path: str) -> tuple[str, str]:
    """The API group/version and resource a request path addresses (subresources and names dropped):
    ``/apis/apps/v1/namespaces/x/statefulsets/y/status`` -> ``("apps/v1", "statefulsets")``. Paths outside
    ``/api`` and ``/apis`` map to ``("", <first segment>)``."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 2:
        gv, rest = parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return "", parts[0]
    if not rest:
        return gv, ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        return gv, rest[2]
    return gv, rest[0]


class PerResourceLimits:
    """``clientConnection`` QPS/burst the way etcd-druid applies them: one token bucket per resource.

    etcd-druid's controller-runtime client builds one REST client per kind it touches, and client-go gives
    every REST client its own token bucket unless one is passed in; so ``qps: 100`` lets etcd-druid write
    ConfigMaps at 100/s and Leases at 100/s at the same time. One bucket shared by all kinds would make the
    same configuration several times slower for druid when it creates an Etcd's dozen objects. A bucket is
    made the first time its resource is used; there are as many as kinds druid talks to (a dozen or two).
    """

    def __init__(self, qps: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        TokenBucket(qps, burst, clock)  # validates
        self.qps, self.burst, self._clock = qps, burst, clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def bucket(self, path: str) -> TokenBucket:
        key = resource_of(path)
        found = self._buckets.get(key)
        if found is None:
            found = self._buckets[key] = TokenBucket(self.qps, self.burst, self._clock)
        return found

    async def acquire(self, path: str) -> None:
        await self.bucket(path).acquire()


class Kube:
    """JSON requests against one API server through a kubernetes-asyncio ``ApiClient``.

    ``limiter`` (optional) rate-limits every request, watches included, per resource as etcd-druid's client
    does (:class:`PerResourceLimits`).
    """

    def __init__(
        self,
        api: client.ApiClient,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        registry: CollectorRegistry | None = None,
        limiter: PerResourceLimits | None = None,
    ) -> None:
        self.api = api
        self.timeout = timeout
        self.limiter = limiter
        self.host = urlsplit(api.configuration.host).netloc
        self._requests = rest_requests(registry)
        self._session: aiohttp.ClientSession | None = None
        self._proxy: tuple[str | None, Any] = _proxy_for(api.configuration)

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        registry: CollectorRegistry | None = None,
        limiter: PerResourceLimits | None = None,
    ) -> Kube:
        return cls(
            client.ApiClient(configuration=await load_configuration(kubeconfig)),
            timeout=timeout,
            registry=registry,
            limiter=limiter,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.api.close()

    def session(self) -> aiohttp.ClientSession:
        """The session every request goes through: kubernetes-asyncio's connector, no per-request env lookups."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=self.api.rest_client.pool_manager.connector,
                connector_owner=False,
                trust_env=False,
                read_bufsize=2**21,  # watch events of large objects exceed aiohttp's default read buffer
            )
        return self._session

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ transport

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None,
        body: Any,
        content_type: str | None,
        timeout: Any,
        accept: str | None = None,
    ) -> aiohttp.ClientResponse:
        cfg = self.api.configuration
        headers = {**self.api.default_headers, "Accept": accept or JSON}  # User-Agent, impersonation, ...
        if content_type is not None:
            headers["Content-Type"] = content_type
        params = [
            (k, v if not isinstance(v, bool) else str(v).lower()) for k, v in (query or {}).items() if v is not None
        ]
        if self.limiter is not None:
            await self.limiter.acquire(path)
        try:
            await self.api.update_params_for_auth(headers, params, ["BearerToken"])
            url = f"{cfg.host}{path}" + ("?" + urlencode(params) if params else "")
            proxy, proxy_auth = self._proxy
            resp = await self.session().request(
                method,
                url,
                headers=headers,
                data=None if body is None else jsonc.dumps(body),
                timeout=_client_timeout(timeout),
                proxy=proxy,
                proxy_auth=proxy_auth,
                proxy_headers=cfg.proxy_headers,
                server_hostname=cfg.tls_server_name,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            self._requests.labels("<error>", method, self.host).inc()
            raise ApiError(0, type(e).__name__, str(e) or type(e).__name__) from e
        self._requests.labels(str(resp.status), method, self.host).inc()
        return resp

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
        accept: str | None = None,
    ) -> Any:
        """One request; returns the parsed JSON answer or raises :class:`ApiError`."""
        if body is not None and content_type is None:
            content_type = "application/json"
        resp = await self._send(
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            timeout=timeout or self.timeout,
            accept=accept,
        )
        try:
            if not 200 <= resp.status < 300:
                raise await error_from_response(resp)
            data = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as e:
            raise ApiError(0, type(e).__name__, str(e) or type(e).__name__) from e
        finally:
            resp.release()
        return jsonc.loads(data) if data else None

    @asynccontextmanager
    async def stream(
        self,
        path: str,
        query: dict[str, Any],
        *,
        connect_timeout: float = WATCH_CONNECT_TIMEOUT,
        idle_timeout: float = WATCH_IDLE_TIMEOUT,
        accept: str | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A long-lived GET (watch): connect timeout plus an idle (socket read) timeout, never a total one."""
        resp = await self._send(
            "GET",
            path,
            query=query,
            body=None,
            content_type=None,
            timeout=(connect_timeout, idle_timeout),
            accept=accept,
        )
        try:
            if resp.status != 200:
                raise await error_from_response(resp)
            yield resp
        finally:
            resp.release()

    # ------------------------------------------------------------------ verbs

    async def get(
        self, res: ResourceRef, name: str, namespace: str | None = None, subresource: str | None = None
    ) -> Obj:
        result: Obj = await self.request("GET", res.path(namespace, name, subresource))
        return result

    async def get_or_none(self, res: ResourceRef, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return await self.get(res, name, namespace)
        except ApiError as e:
            if e.not_found:
                return None
            raise

    async def list(
        self,
        res: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        timeout: float | None = None,
        accept: str | None = None,
    ) -> Obj:
        """One page of a LIST; ``accept=METADATA_ONLY`` returns a PartialObjectMetadataList."""
        query = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "limit": limit,
            "continue": continue_,
            "resourceVersion": resource_version,
        }
        if accept == METADATA_ONLY:
            accept = METADATA_ONLY_LIST  # the list itself is a PartialObjectMetadataList
        result: Obj = await self.request("GET", res.path(namespace), query=query, timeout=timeout, accept=accept)
        return result

    async def create(self, res: ResourceRef, obj: Obj, namespace: str | None = None, *, dry_run: bool = False) -> Obj:
        ns = namespace or obj.get("metadata", {}).get("namespace")
        query = {"dryRun": "All"} if dry_run else None
        result: Obj = await self.request("POST", res.path(ns), body=obj, query=query)
        return result

    async def replace(self, res: ResourceRef, obj: Obj, *, subresource: str | None = None) -> Obj:
        meta = obj["metadata"]
        result: Obj = await self.request("PUT", res.path(meta.get("namespace"), meta["name"], subresource), body=obj)
        return result

    async def apply(
        self,
        res: ResourceRef,
        obj: Obj,
        *,
        field_manager: str,
        force: bool = True,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Server-side apply of the partial intent ``obj`` (apiVersion, kind, metadata name/namespace, owned fields)."""
        meta = obj["metadata"]
        query: dict[str, Any] = {"fieldManager": field_manager, "force": force or None}
        if dry_run:
            query["dryRun"] = "All"
        result: Obj = await self.request(
            "PATCH",
            res.path(meta.get("namespace"), meta["name"], subresource),
            query=query,
            body=obj,
            content_type=patch.APPLY,
        )
        return result

    async def merge_patch(
        self, res: ResourceRef, name: str, body: Obj, namespace: str | None = None, *, subresource: str | None = None
    ) -> Obj:
        result: Obj = await self.request(
            "PATCH", res.path(namespace, name, subresource), body=body, content_type=patch.MERGE
        )
        return result

    async def json_patch(
        self,
        res: ResourceRef,
        name: str,
        ops: Sequence[dict[str, Any]],
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """RFC 6902 patch; include ``{"op": "test", ...}`` operations as preconditions."""
        result: Obj = await self.request(
            "PATCH",
            res.path(namespace, name, subresource),
            body=list(ops),
            content_type=patch.JSON_PATCH,
            query={"dryRun": "All"} if dry_run else None,
        )
        return result

    async def delete(
        self,
        res: ResourceRef,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> bool:
        """Delete; False when the object was already gone. ``uid``/``resource_version`` become preconditions."""
        body: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation:
            body["propagationPolicy"] = propagation
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if pre:
            body["preconditions"] = pre
        try:
            await self.request("DELETE", res.path(namespace, name), body=body)
        except ApiError as e:
            if e.not_found:
                return False
            raise
        return True

    async def delete_collection(self, res: ResourceRef, namespace: str, *, label_selector: str) -> None:
        await self.request("DELETE", res.path(namespace), query={"labelSelector": label_selector})
