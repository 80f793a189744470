"""An in-memory API server behind druid's own client, for fast reconcile-flow unit tests.

:class:`FakeKube` is a :class:`druid.runtime.client.Kube` whose single transport method, ``request``, is
answered from a dict instead of an API server, so every verb the reconcilers use (``get``, ``get_or_none``,
``list``, ``create``, ``replace``, ``apply``, ``merge_patch``, ``json_patch``, ``delete``,
``delete_collection``, raw ``request``) runs through the real client code above it (path building, 404 →
``None`` in ``get_or_none``, ``delete``'s ``False`` for a missing object, preconditions in ``DeleteOptions``).

What it keeps faithfully:

- one cluster-wide ``resourceVersion`` counter: every write bumps the object's resourceVersion; ``generation``
  starts at 1 and grows when anything outside ``metadata`` and ``status`` changes (and when deletion starts);
- optimistic concurrency: a PUT or a patch whose body carries ``metadata.resourceVersion`` fails with 409
  Conflict when it is not the stored one, as do ``DeleteOptions`` preconditions (uid, resourceVersion);
- ``/status`` writes change only ``status``; writes to the object itself never change ``status``;
- merge patches (RFC 7386: ``null`` deletes, objects merge, lists are replaced) and JSON patches (RFC 6902
  ``add``/``remove``/``replace``/``test``; a failed ``test`` is 422);
- finalizers: deleting an object with finalizers sets ``deletionTimestamp`` (the object stays, writes still
  work); it goes when the last finalizer is removed; create with an existing name is 409 AlreadyExists;
- lists with equality label selectors (``a=b``, ``a!=b``, ``a``, ``!a``, comma-joined) and field selectors
  (``path.to.field=value``, comma-joined); ``accept=METADATA_ONLY`` returns PartialObjectMetadata.

Its limits (use the real control plane in test/integration for these):

- no watches (``stream`` raises): unit tests feed informer stores themselves;
- server-side apply is approximated as "create, or merge-patch the intent": no field managers, no conflicts,
  fields left out of the intent are not removed, lists are replaced whole;
- no defaulting, validation, admission, namespaces' existence, garbage collection (``propagation`` is
  ignored: dependents are not deleted), ``generateName``, or strategic merge patch;
- resource kinds are whatever the paths say: any ``/api/v1/...`` or ``/apis/<group>/<version>/...`` path works.

Tests can look at ``requests`` (every ``(method, path)``), ``writes()`` (the non-GET ones), put objects in
place with :meth:`add` (bumping the resourceVersion like a write by someone else), read them with
:meth:`object`, and make the next matching requests fail with :meth:`fail`.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from druid.runtime import patch as content
from druid.runtime.client import METADATA_ONLY, METADATA_ONLY_LIST, ApiError, Kube
from druid.runtime.clock import rfc3339
from druid.runtime.objects import Obj, ResourceRef
from druid.runtime.patch import apply_merge_patch

WRITES = ("POST", "PUT", "PATCH", "DELETE")
_Key = tuple[str, str | None, str]  # (collection "<group>/<version>/<plural>", namespace, name)


@dataclass(frozen=True)
class _Path:
    collection: str
    namespace: str | None
    name: str | None
    subresource: str | None


def _parse(path: str) -> _Path:
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise ApiError(404, "NotFound", f"the fake knows no path {path}")
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise ApiError(404, "NotFound", f"the fake knows no path {path}")
    name = rest[1] if len(rest) > 1 else None
    return _Path(f"{group}/{version}/{rest[0]}", namespace, name, rest[2] if len(rest) > 2 else None)


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def json_patch(doc: Obj, ops: list[dict[str, Any]]) -> Obj:
    """RFC 6902 ``add``/``remove``/``replace``/``test`` (422 Invalid on a failed test or a bad path)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = _pointer(op["path"])
        node: Any = doc
        try:
            for p in parents:
                node = node[int(p)] if isinstance(node, list) else node[p]
            kind = op["op"]
            if kind == "test":
                current = node[int(last)] if isinstance(node, list) else node.get(last)
                if current != op.get("value"):
                    raise ApiError(422, "Invalid", f"test operation failed at {op['path']}")
            elif kind == "remove":
                del node[int(last) if isinstance(node, list) else last]
            elif kind in ("add", "replace"):
                if isinstance(node, list):
                    index = len(node) if last == "-" else int(last)
                    if kind == "add":
                        node.insert(index, copy.deepcopy(op["value"]))
                    else:
                        node[index] = copy.deepcopy(op["value"])
                else:
                    if kind == "replace" and last not in node:
                        raise KeyError(last)
                    node[last] = copy.deepcopy(op["value"])
            else:
                raise ApiError(422, "Invalid", f"the fake does not support op {kind}")
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise ApiError(422, "Invalid", f"bad path {op['path']}: {e}") from e
    return doc


def _label_match(labels: dict[str, str], selector: str | None) -> bool:
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field_match(obj: Obj, selector: str | None) -> bool:
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        negate = "!=" in term
        path, value = term.split("!=" if negate else "=", 1)
        node: Any = obj
        for p in path.rstrip("=").split("."):
            node = node.get(p) if isinstance(node, dict) else None
        equal = ("" if node is None else str(node)) == value.lstrip("=")
        if equal == negate:
            return False
    return True


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class FakeKube(Kube):
    """druid's client over an in-memory object store (see the module docstring for what it does and does not)."""

    def __init__(self, *, now: Callable[[], dt.datetime] | None = None) -> None:
        # No ApiClient: everything goes through the overridden request().
        self.timeout = 0.0
        self.limiter = None
        self.host = "fake"
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._objects: dict[_Key, Obj] = {}
        self._rv = itertools.count(1)
        self.resource_version = "0"
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[Any] = []
        self._failures: list[tuple[ApiError, str | None, str | None, list[int]]] = []

    async def close(self) -> None:
        return None

    # ------------------------------------------------------------------ test helpers

    def writes(self, method: str | None = None) -> list[tuple[str, str]]:
        """The write requests so far (all, or of one method), as ``(method, path)``."""
        return [r for r in self.requests if r[0] in WRITES and (method is None or r[0] == method)]

    def fail(self, error: ApiError, *, method: str | None = None, path: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests matching ``method`` whose path ends with ``path`` with ``error``
        (``path="/configmaps"`` fails lists of ConfigMaps, not reads of one)."""
        self._failures.append((error, method, path, [times]))

    def add(self, res: ResourceRef, obj: Obj) -> Obj:
        """Store ``obj`` as is (status included), as a write by someone else would: new resourceVersion, uid and
        generation 1 unless given. Returns a copy of what is stored."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", rfc3339(self._now()))
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", res.kind)
        key = self._key(_parse(res.path(meta.get("namespace"), meta["name"])))
        return self._store(key, obj)

    def object(self, res: ResourceRef, name: str, namespace: str | None = None) -> Obj | None:
        """A copy of the stored object, or None."""
        found = self._objects.get(self._key(_parse(res.path(namespace, name))))
        return copy.deepcopy(found) if found is not None else None

    def objects(self, res: ResourceRef, namespace: str | None = None) -> list[Obj]:
        collection = _parse(res.path(namespace)).collection
        return [
            copy.deepcopy(o)
            for (c, ns, _), o in sorted(self._objects.items(), key=lambda kv: (kv[0][1] or "", kv[0][2]))
            if c == collection and (namespace is None or ns == namespace)
        ]

    # ------------------------------------------------------------------ the transport

    def stream(self, path: str, query: dict[str, Any], **kwargs: Any) -> Any:
        raise NotImplementedError("FakeKube has no watches; feed informer stores directly")

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
        self.requests.append((method, path))
        self.bodies.append(copy.deepcopy(body))
        for failure in self._failures:
            error, f_method, f_path, left = failure
            if left[0] > 0 and f_method in (None, method) and (f_path is None or path.endswith(f_path)):
                left[0] -= 1
                raise error
        query = {k: v for k, v in (query or {}).items() if v is not None}
        p = _parse(path)
        dry_run = query.get("dryRun") == "All"
        if method == "GET":
            if p.name is None:
                return self._list(p, query, accept)
            obj = copy.deepcopy(self._get(p))
            return _metadata_only(obj) if accept == METADATA_ONLY else obj
        if method == "POST":
            return self._create(p, body, dry_run)
        if method == "PUT":
            return self._update(p, body, body.get("metadata", {}).get("resourceVersion"))
        if method == "PATCH":
            return self._patch(p, body, content_type or content.MERGE, dry_run)
        if method == "DELETE":
            if p.name is None:
                for obj in self._list(p, query, None)["items"]:
                    self._delete(_Path(p.collection, obj["metadata"].get("namespace"), obj["metadata"]["name"], None))
                return {"kind": "Status", "status": "Success"}
            return self._delete(p, (body or {}).get("preconditions") or {})
        raise ApiError(405, "MethodNotAllowed", f"{method} {path}")

    # ------------------------------------------------------------------ verbs

    @staticmethod
    def _key(p: _Path) -> _Key:
        assert p.name is not None
        return (p.collection, p.namespace, p.name)

    def _get(self, p: _Path) -> Obj:
        found = self._objects.get(self._key(p))
        if found is None:
            raise ApiError(404, "NotFound", f'{p.collection.rsplit("/", 1)[1]} "{p.name}" not found')
        return found

    def _store(self, key: _Key, obj: Obj) -> Obj:
        self.resource_version = str(next(self._rv))
        obj["metadata"]["resourceVersion"] = self.resource_version
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._objects.pop(key, None)
        else:
            self._objects[key] = obj
        return copy.deepcopy(obj)

    def _list(self, p: _Path, query: dict[str, Any], accept: str | None) -> Obj:
        items = [
            copy.deepcopy(o)
            for (c, ns, _), o in sorted(self._objects.items(), key=lambda kv: (kv[0][1] or "", kv[0][2]))
            if c == p.collection
            and (p.namespace is None or ns == p.namespace)
            and _label_match(o["metadata"].get("labels") or {}, query.get("labelSelector"))
            and _field_match(o, query.get("fieldSelector"))
        ]
        meta = {"resourceVersion": self.resource_version}
        if accept in (METADATA_ONLY, METADATA_ONLY_LIST):
            return {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": meta,
                    "items": [_metadata_only(o) for o in items]}  # fmt: skip
        return {"kind": "List", "apiVersion": "v1", "metadata": meta, "items": items}

    def _create(self, p: _Path, body: Obj, dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if p.namespace is not None:
            meta["namespace"] = p.namespace
        key = self._key(_Path(p.collection, p.namespace, meta["name"], None))
        if key in self._objects:
            raise ApiError(409, "AlreadyExists", f'{p.collection.rsplit("/", 1)[1]} "{meta["name"]}" already exists')
        meta.pop("resourceVersion", None)
        meta.update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=rfc3339(self._now()))
        if dry_run:
            return obj
        return self._store(key, obj)

    def _update(self, p: _Path, body: Obj, rv: str | None, dry_run: bool = False) -> Obj:
        current = self._get(p)
        if rv is not None and rv != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409, "Conflict", "the object has been modified; please apply your changes to the latest version"
            )
        new = copy.deepcopy(current)
        if p.subresource == "status":
            new["status"] = copy.deepcopy(body.get("status"))
            if new["status"] is None:
                del new["status"]
        else:
            status = new.get("status")
            new = copy.deepcopy(body)
            meta = new.setdefault("metadata", {})
            for immutable in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "namespace", "name"):
                if immutable in current["metadata"]:
                    meta[immutable] = current["metadata"][immutable]
                else:
                    meta.pop(immutable, None)
            new.pop("status", None)
            if status is not None:
                new["status"] = status
            if _spec_part(new) != _spec_part(current):
                meta["generation"] = current["metadata"].get("generation", 1) + 1
        if dry_run:
            return new
        return self._store(self._key(p), new)

    def _patch(self, p: _Path, body: Any, content_type: str, dry_run: bool) -> Obj:
        if content_type == content.APPLY:
            if self._objects.get(self._key(p)) is None:
                return self._create(_Path(p.collection, p.namespace, None, None), body, dry_run)
            content_type = content.MERGE
        current = self._get(p)
        if content_type == content.MERGE:
            rv = (body.get("metadata") or {}).get("resourceVersion")
            if p.subresource == "status":
                patched = (
                    apply_merge_patch(current, {"status": body["status"]})
                    if "status" in body
                    else copy.deepcopy(current)
                )
            else:
                patched = apply_merge_patch(current, {k: v for k, v in body.items() if k != "status"})
        elif content_type == content.JSON_PATCH:
            rv = None
            patched = json_patch(current, body)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the fake does not support {content_type}")
        patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self._update(p, patched, rv, dry_run)

    def _delete(self, p: _Path, preconditions: dict[str, str] | None = None) -> Obj:
        current = self._get(p)
        meta = current["metadata"]
        for field in ("uid", "resourceVersion"):
            want = (preconditions or {}).get(field)
            if want is not None and want != meta.get(field):
                raise ApiError(409, "Conflict", f"Precondition failed: {field} in precondition: {want}, in object: "
                                                f"{meta.get(field)}")  # fmt: skip
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                current = copy.deepcopy(current)
                current["metadata"].update(
                    deletionTimestamp=rfc3339(self._now()),
                    deletionGracePeriodSeconds=0,
                    generation=meta.get("generation", 1) + 1,
                )
                return self._store(self._key(p), current)
            return copy.deepcopy(current)
        del self._objects[self._key(p)]
        return copy.deepcopy(current)


def _metadata_only(obj: Obj) -> Obj:
    return {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj["metadata"]}
