"""A hostPath volume provisioner for the local real node: writable directories for etcd pods running as 65532.

kwok's volume stages make root-owned 0755 directories, and hostPath volumes ignore ``fsGroup``, so a pod
running as uid 65532 cannot write to them. This provisioner serves one StorageClass (provisioner
``druid.local/hostpath``, see :func:`storage_class`) on one node:

* A PVC of that class (``spec.storageClassName`` equal to it, or unset while the class is the default)
  that is Pending, has no ``volumeName`` and is not being deleted gets a directory
  ``<root>/<namespace>-<name>-<uid>`` owned 65532:65532 with mode 0770 (root in a container passes through
  CAP_DAC_OVERRIDE, so root-run pods can use it too; when the provisioner itself is not root it cannot
  chown and makes the directory 0777 instead) and a PV ``pvc-<uid>``: hostPath of type Directory,
  capacity = the request, the PVC's access modes and volume mode, ``claimRef`` with the PVC's uid (so it
  binds to exactly that claim), node affinity to the node, the class's reclaim policy (default Delete) and
  the annotation ``pv.kubernetes.io/provisioned-by: druid.local/hostpath``. kube-controller-manager's PV
  controller then binds both. With ``WaitForFirstConsumer`` the PVC must carry the scheduler's
  ``volume.kubernetes.io/selected-node`` annotation naming this node first.
* A PV it provisioned that is Released with reclaim policy Delete loses its directory (only ever a
  directory strictly inside ``root``), then the PV is deleted.

It watches PVCs, PVs and the StorageClass through druid's own informers and reconciles everything after
each change (and every few seconds anyway); failed actions are retried on the next pass. One line per action
goes to stdout. SIGTERM or SIGINT stops it cleanly (exit 0).

Command line: ``python -m druid.testing.provisioner --kubeconfig K --root DIR --storage-class NAME --node NODE``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from druid.runtime import logging as druid_logging
from druid.runtime.client import ApiError, Kube
from druid.runtime.informer import FuncHandler, SharedInformer
from druid.runtime.objects import PVCS, Obj, ResourceRef

PROVISIONER = "druid.local/hostpath"
ANNOTATION_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANNOTATION_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANNOTATION_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
HOSTNAME_LABEL = "kubernetes.io/hostname"
VOLUME_UID = VOLUME_GID = 65532
VOLUME_MODE = 0o770
RESYNC_SECONDS = 5.0
RETRY_SECONDS = 1.0

PVS = ResourceRef("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False)
STORAGE_CLASSES = ResourceRef("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False)

BindingMode = Literal["WaitForFirstConsumer", "Immediate"]


def storage_class(
    name: str,
    default: bool,
    *,
    binding_mode: BindingMode = "WaitForFirstConsumer",
    reclaim_policy: Literal["Delete", "Retain"] = "Delete",
    node: str | None = None,
) -> Obj:
    """The StorageClass this provisioner serves; with ``node``, the scheduler only picks that node for its PVCs."""
    sc: Obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "annotations": {ANNOTATION_DEFAULT_CLASS: "true" if default else "false"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": reclaim_policy,
        "volumeBindingMode": binding_mode,
    }
    if node is not None:
        sc["allowedTopologies"] = [{"matchLabelExpressions": [{"key": HOSTNAME_LABEL, "values": [node]}]}]
    return sc


@dataclass(frozen=True)
class Config:
    root: Path
    storage_class: str
    node: str


# ---------------------------------------------------------------- pure decisions


def _meta(obj: Obj) -> dict[str, Any]:
    meta: dict[str, Any] = obj.get("metadata") or {}
    return meta


def is_default(sc: Obj) -> bool:
    return (_meta(sc).get("annotations") or {}).get(ANNOTATION_DEFAULT_CLASS) == "true"


def pv_name(pvc: Obj) -> str:
    return f"pvc-{_meta(pvc)['uid']}"


def volume_dir(root: Path, pvc: Obj) -> Path:
    meta = _meta(pvc)
    return root / f"{meta['namespace']}-{meta['name']}-{meta['uid']}"


def wants_volume(pvc: Obj, sc: Obj | None, cfg: Config) -> str | None:
    """Why ``pvc`` is to be provisioned now (``immediate`` or ``selected-node:<node>``), or None when it is not
    (``sc`` is the served class, None when it does not exist)."""
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    if sc is None or sc.get("provisioner") != PROVISIONER or _meta(pvc).get("deletionTimestamp"):
        return None
    if spec.get("volumeName") or status.get("phase", "Pending") != "Pending":
        return None
    cls = spec.get("storageClassName")
    if not (cls == cfg.storage_class or (cls is None and is_default(sc))):
        return None
    if sc.get("volumeBindingMode") == "WaitForFirstConsumer":
        node = (_meta(pvc).get("annotations") or {}).get(ANNOTATION_SELECTED_NODE)
        return f"selected-node:{node}" if node == cfg.node else None
    return "immediate"


def persistent_volume(pvc: Obj, sc: Obj, cfg: Config) -> Obj:
    """The PV for ``pvc``; raises ValueError when the claim asks for something a hostPath cannot give."""
    meta, spec = _meta(pvc), pvc.get("spec") or {}
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if not storage:
        raise ValueError("no spec.resources.requests.storage")
    volume_mode = spec.get("volumeMode") or "Filesystem"
    if volume_mode != "Filesystem":
        raise ValueError(f"volumeMode {volume_mode} is not supported")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name(pvc), "annotations": {ANNOTATION_PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "volumeMode": volume_mode,
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": cfg.storage_class,
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "hostPath": {"path": str(volume_dir(cfg.root, pvc)), "type": "Directory"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": [cfg.node]}]}
                    ]
                }
            },
        },
    }


def provisioned_here(pv: Obj) -> bool:
    return (_meta(pv).get("annotations") or {}).get(ANNOTATION_PROVISIONED_BY) == PROVISIONER


def releasable(pv: Obj) -> bool:
    """A PV of ours that is Released with reclaim policy Delete (and not already being deleted)."""
    spec, status = pv.get("spec") or {}, pv.get("status") or {}
    return (
        provisioned_here(pv)
        and status.get("phase") == "Released"
        and spec.get("persistentVolumeReclaimPolicy") == "Delete"
        and not _meta(pv).get("deletionTimestamp")
    )


def inside(root: Path, path: Path) -> bool:
    """True when ``path`` is strictly below ``root`` (after resolving symlinks and ``..``)."""
    root, path = root.resolve(), path.resolve()
    return path != root and path.is_relative_to(root)


# ---------------------------------------------------------------- side effects


def log(action: str, **fields: object) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    details = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"{now} {action} {details}".rstrip(), flush=True)


def make_volume_dir(path: Path) -> str:
    """Create ``path`` owned 65532:65532 mode 0770 (0777 when we may not chown); returns the resulting mode."""
    path.mkdir(parents=False, exist_ok=True)
    mode = VOLUME_MODE
    try:
        os.chown(path, VOLUME_UID, VOLUME_GID)
    except PermissionError:
        mode = 0o777
    path.chmod(mode)
    return oct(mode)


class Provisioner:
    """Informers on PVCs, PVs and the served StorageClass; one reconcile pass after every change."""

    def __init__(self, kube: Kube, cfg: Config) -> None:
        self.kube, self.cfg = kube, cfg
        self.pvcs = SharedInformer(kube, PVCS)
        self.pvs = SharedInformer(kube, PVS)
        self.classes = SharedInformer(kube, STORAGE_CLASSES, field_selector=f"metadata.name={cfg.storage_class}")
        self._dirty = asyncio.Event()
        wake = FuncHandler(lambda _: self._dirty.set(), lambda _o, _n: self._dirty.set(), lambda _: self._dirty.set())
        for informer in (self.pvcs, self.pvs, self.classes):
            informer.add_handler(wake)

    async def run(self, stop: asyncio.Event) -> None:
        informers = (self.pvcs, self.pvs, self.classes)
        for informer in informers:
            informer.start()
        try:
            while not all(i.has_synced() for i in informers):
                if stop.is_set():
                    return
                await _wait_any(stop, self._dirty, 0.1)
            log("started", root=self.cfg.root, storage_class=self.cfg.storage_class, node=self.cfg.node)
            while not stop.is_set():
                self._dirty.clear()
                ok = await self.reconcile()
                await _wait_any(stop, self._dirty, RESYNC_SECONDS if ok else RETRY_SECONDS)
        finally:
            for informer in informers:
                await informer.stop()

    def served_class(self) -> Obj | None:
        classes = self.classes.store.list()
        return classes[0] if classes else None

    async def reconcile(self) -> bool:
        """One pass; False when some action failed (the caller retries soon)."""
        ok = True
        sc = self.served_class()
        existing = {_meta(pv)["name"] for pv in self.pvs.store.list()}
        for pvc in self.pvcs.store.list():
            reason = wants_volume(pvc, sc, self.cfg)
            if reason is not None and sc is not None and pv_name(pvc) not in existing:
                ok = await self.provision(pvc, sc, reason) and ok
        for pv in self.pvs.store.list():
            if releasable(pv):
                ok = await self.delete(pv) and ok
        return ok

    async def provision(self, pvc: Obj, sc: Obj, reason: str) -> bool:
        meta = _meta(pvc)
        claim = f"{meta['namespace']}/{meta['name']}"
        try:
            pv = persistent_volume(pvc, sc, self.cfg)
            path = volume_dir(self.cfg.root, pvc)
            mode = make_volume_dir(path)
            await self.kube.create(PVS, pv)
        except ApiError as e:
            if e.conflict:  # created by an earlier pass; the cache had not seen it yet
                return True
            log("provision-failed", pvc=claim, error=e)
            return False
        except (OSError, ValueError) as e:
            log("provision-failed", pvc=claim, error=e)
            return False
        capacity = pv["spec"]["capacity"]["storage"]
        log("provisioned", pv=pv_name(pvc), pvc=claim, dir=path, mode=mode, capacity=capacity, binding=reason)
        return True

    async def delete(self, pv: Obj) -> bool:
        name = _meta(pv)["name"]
        path = Path(((pv.get("spec") or {}).get("hostPath") or {}).get("path") or "")
        try:
            if inside(self.cfg.root, path):
                if path.exists():
                    await asyncio.to_thread(shutil.rmtree, path)
            else:
                log("delete-kept-dir", pv=name, dir=path, reason="outside-root")
            await self.kube.delete(PVS, name, uid=_meta(pv).get("uid"))
        except (ApiError, OSError) as e:
            log("delete-failed", pv=name, dir=path, error=e)
            return False
        log("deleted", pv=name, dir=path)
        return True


async def _wait_any(stop: asyncio.Event, dirty: asyncio.Event, timeout: float) -> None:
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(dirty.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


# ---------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None = None) -> tuple[str, Config]:
    p = argparse.ArgumentParser(prog="python -m druid.testing.provisioner", description=__doc__.split("\n\n")[0])
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--root", required=True, type=Path, help="directory under which volume directories are made")
    p.add_argument(
        "--storage-class", required=True, help="the StorageClass to serve (provisioner druid.local/hostpath)"
    )
    p.add_argument("--node", required=True, help="the node the volumes live on (its kubernetes.io/hostname label)")
    a = p.parse_args(argv)
    return a.kubeconfig, Config(root=a.root.resolve(), storage_class=a.storage_class, node=a.node)


async def serve(kubeconfig: str, cfg: Config) -> None:
    cfg.root.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with await Kube.connect(kubeconfig, timeout=10) as kube:
        await Provisioner(kube, cfg).run(stop)
    log("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    kubeconfig, cfg = parse_args(argv)
    druid_logging.configure(level="warning", fmt="text")
    asyncio.run(serve(kubeconfig, cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
