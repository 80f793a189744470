"""What every component module offers, and the inputs its pure builder takes.

A component module (one per managed object kind) provides:
- ``build(etcd, opts, ...) -> list[Obj]``: the desired objects, pure (no I/O), used by the controller
  and by ``druid render`` alike;
- sync / trigger-delete / existing-names against the cluster (added with the Etcd controller).
Every built object carries the default labels, the component's ``app.kubernetes.io/component`` and
``app.kubernetes.io/name`` labels and a controller ownerReference to the Etcd.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from druid.api import names
from druid.api.etcd import Etcd
from druid.config import features
from druid.config.images import Images
from druid.runtime.objects import Obj


@dataclass(frozen=True)
class BuildOptions:
    """Operator-level inputs of the builders (from the operator configuration and image vector)."""

    images: Images
    disable_etcd_service_account_automount: bool = False
    feature_gates: dict[str, bool] = field(default_factory=dict)

    def feature(self, name: str) -> bool:
        return features.is_enabled(self.feature_gates, name)


def metadata(etcd: Etcd, name: str, component: str, app_name: str | None = None, **extra: Any) -> dict[str, Any]:
    """Object metadata shared by all components: name, namespace, labels and the Etcd controller ownerRef."""
    meta = etcd.metadata
    etcd_name = meta.name or ""
    labels = {
        **names.default_labels(etcd_name),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/name": app_name if app_name is not None else name,
    }
    out: dict[str, Any] = {
        "name": name,
        "namespace": meta.namespace,
        "labels": labels,
        "ownerReferences": [names.owner_reference(etcd_name, meta.uid or "")],
    }
    out.update(extra)
    return out


def obj(api_version: str, kind: str, meta: dict[str, Any], **body: Any) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **body}
