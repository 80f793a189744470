"""What a component is: one managed object kind, its pure builder and how druid finds, applies and deletes it.

A component module (one per kind, ``druid/components/<object>.py``) exposes one :class:`Component` as
``COMPONENT``; ``registry.py`` lists the modules in sync order. A component names its ``kind``, ``resource``,
``component_label``, ``error_codes`` and pure ``builder`` (:meth:`Component.of` takes them from the module's
``KIND``, ``RESOURCE``, ``COMPONENT_LABEL``, ``ERROR_CODES`` and ``build``); everything else has a default here
that fits most kinds:

- ``runtime``: True for the runtime components, which are synced only while runtime component creation is
  enabled (the ``disable-etcd-runtime-component-creation`` annotation is absent) and deleted otherwise;
- ``object_names(etcd_name)`` (``names``): the names the Etcd's objects are looked up by (existing names,
  trigger delete; none);
- ``selector(etcd_name)``: the label selector they are also listed by (None: found by name only);
- ``not_applied`` (``applied(desired)``): top-level fields of a desired object druid neither applies nor compares
  with the live one (none);
- ``stale_spec_fields``: optional spec fields removed when no longer desired, whoever set them;
- ``concurrent``: its objects are applied concurrently rather than one after the other;
- ``delete_when_not_desired``: when it builds nothing, its existing objects are deleted.

Every built object carries the default labels, the component's ``app.kubernetes.io/component`` and
``app.kubernetes.io/name`` labels and a controller ownerReference to the Etcd (:func:`metadata`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Self

from druid.api import constants as c
from druid.api import names
from druid.api.etcd import Etcd
from druid.config import features
from druid.config.images import Images
from druid.runtime.objects import Obj, ResourceRef


@dataclass(frozen=True)
class BuildOptions:
    """Operator-level inputs of the builders (from the operator configuration and image vector)."""

    images: Images
    disable_etcd_service_account_automount: bool = False
    feature_gates: dict[str, bool] = field(default_factory=dict)

    def feature(self, name: str) -> bool:
        return features.is_enabled(self.feature_gates, name)


class ErrorCodes(NamedTuple):
    """DruidError codes of one component, per operation (``get`` is used by get-existing-names)."""

    get: str
    sync: str
    delete: str


@dataclass(frozen=True)
class BuildInputs:
    """What a builder may read besides the Etcd and the options.

    ``built``: the objects of the components before it in sync order (kind -> objects);
    ``backup_host_path``: for the Local store provider, the bucket directory on the host (read by the
    controller from the store Secret; None means the default directory).
    """

    built: Mapping[str, list[Obj]] = field(default_factory=dict)
    backup_host_path: str | None = None


@dataclass(frozen=True, eq=False)
class Component:
    """One managed kind; see the module docstring for what each field means and its default."""

    kind: str
    resource: ResourceRef
    component_label: str
    error_codes: ErrorCodes
    builder: Callable[[Etcd, BuildOptions], list[Obj]]
    """The kind's pure builder; kinds that need what was built before them override :meth:`build` instead."""
    object_names: Callable[[str], list[str]] = field(default=lambda etcd_name: [])
    runtime: bool = True
    concurrent: bool = False
    found_by_labels: bool = False
    stale_spec_fields: tuple[str, ...] = ()
    delete_when_not_desired: bool = False
    not_applied: tuple[str, ...] = ()
    """Top-level fields of a desired object that druid neither applies nor compares (another writer owns them)."""

    @classmethod
    def of(cls, module: Mapping[str, Any], **behaviour: Any) -> Self:
        """The component a module declares: its ``KIND``, ``RESOURCE``, ``COMPONENT_LABEL``, ``ERROR_CODES``
        and ``build(etcd, opts)`` (pass ``globals()``), with ``behaviour`` overriding the defaults."""
        return cls(
            module["KIND"],
            module["RESOURCE"],
            module["COMPONENT_LABEL"],
            module["ERROR_CODES"],
            module["build"],
            **behaviour,
        )

    def build(self, etcd: Etcd, opts: BuildOptions, inputs: BuildInputs) -> list[Obj]:
        """The desired objects, pure (no I/O); raises ``ValueError`` for a spec that cannot be built."""
        return self.builder(etcd, opts)

    def names(self, etcd_name: str) -> list[str]:
        """Names the Etcd's objects are looked up by, from the Etcd's name alone."""
        return self.object_names(etcd_name)

    def selector(self, etcd_name: str) -> dict[str, str] | None:
        """Labels the Etcd's objects are listed by (default labels and component), when ``found_by_labels``."""
        if not self.found_by_labels:
            return None
        return {**names.default_labels(etcd_name), c.LABEL_COMPONENT: self.component_label}

    def applied(self, desired: Obj) -> Obj:
        """What druid applies (and compares) of a desired object: all of it but ``not_applied``."""
        if not self.not_applied:
            return desired
        return {k: v for k, v in desired.items() if k not in self.not_applied}

    def __repr__(self) -> str:
        return f"<component {self.kind}>"


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
