"""The ``ValidatingWebhookConfiguration`` of the etcd-components webhook (upstream's chart,
charts/templates/validatingwebhookconfig.yaml, hardened): three webhooks calling the same path.

- ``etcdcomponents.webhooks.druid.gardener.cloud``: UPDATE/DELETE of the kinds druid manages (the
  resources of the component registry, and jobs) and of pods (druid extension; also UPDATE of
  ``pods/ephemeralcontainers``), only for objects labelled ``app.kubernetes.io/managed-by=etcd-druid``
  (the API server calls the webhook when the old *or* the new object matches, so relabelling is seen);
- ``stsscale.etcdcomponents.webhooks.druid.gardener.cloud``: UPDATE/DELETE of ``statefulsets/scale``
  without an objectSelector (an objectSelector does not apply to subresources, kubernetes#113594);
- ``pvc.etcdcomponents.webhooks.druid.gardener.cloud``: DELETE of PVCs without an objectSelector (druid
  deviation: upstream selects claims by label, so relabelling a claim took it out of protection; the
  webhook judges claims by name);
- ``etcds.webhooks.druid.gardener.cloud`` (druid extension, path ``/webhooks/etcds``): CREATE/UPDATE of
  Etcds, judged against the OperatorConfiguration's ``etcdAdmissionPolicy``.

All fail closed (failurePolicy Fail), matchPolicy Exact, sideEffects None, timeoutSeconds 10. The
clientConfig is a Service reference (deployments) or a URL (tests, out-of-cluster runs).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

from druid.api import constants as c
from druid.api.resources import ETCDS
from druid.components import registry
from druid.runtime.objects import JOBS, PODS, PVCS, Obj, ResourceRef

VALIDATING_WEBHOOK_CONFIGURATIONS = ResourceRef(
    "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False
)
WEBHOOK_PATH = "/webhooks/etcdcomponents"
ETCDS_WEBHOOK_PATH = "/webhooks/etcds"
CONFIGURATION_NAME = "etcd-druid"
WEBHOOK_NAME = "etcdcomponents.webhooks.druid.gardener.cloud"
STS_SCALE_WEBHOOK_NAME = "stsscale.etcdcomponents.webhooks.druid.gardener.cloud"
PVC_WEBHOOK_NAME = "pvc.etcdcomponents.webhooks.druid.gardener.cloud"
ETCDS_WEBHOOK_NAME = "etcds.webhooks.druid.gardener.cloud"
DEFAULT_PORT = 9443


def _rule(group: str, resources: list[str], operations: tuple[str, ...] = ("UPDATE", "DELETE")) -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": ["v1"],
        "operations": list(operations),
        "resources": resources,
        "scope": "*",
    }


def _component_rules() -> tuple[dict[str, Any], ...]:
    """UPDATE/DELETE of the registry's resources, one rule per API group; jobs; pods and their ephemeral
    containers."""
    by_group: dict[str, list[str]] = {}
    for res in registry.managed_resources():
        by_group.setdefault(res.group, []).append(res.plural)
    return (
        *(_rule(group, plurals) for group, plurals in by_group.items()),
        _rule(JOBS.group, [JOBS.plural]),
        _rule(PODS.group, [PODS.plural]),
        _rule(PODS.group, [f"{PODS.plural}/ephemeralcontainers"], ("UPDATE",)),
    )


COMPONENT_RULES: tuple[dict[str, Any], ...] = _component_rules()
STS_SCALE_RULES: tuple[dict[str, Any], ...] = (_rule("apps", ["statefulsets/scale"]),)
PVC_RULES: tuple[dict[str, Any], ...] = (_rule(PVCS.group, [PVCS.plural], ("DELETE",)),)
ETCDS_RULES: tuple[dict[str, Any], ...] = (
    {**_rule(ETCDS.group, [ETCDS.plural], ("CREATE", "UPDATE")), "apiVersions": [ETCDS.version]},
)


@dataclass(frozen=True)
class ServiceReference:
    """The Service in front of druid's webhook server."""

    namespace: str
    name: str = "etcd-druid"
    port: int = DEFAULT_PORT
    path: str = WEBHOOK_PATH


def webhook_url(host: str, port: int) -> str:
    """``https://<host>:<port>/webhooks/etcdcomponents``."""
    return f"https://{host}:{port}{WEBHOOK_PATH}"


def client_config(ca_bundle: bytes | str, *, service: ServiceReference | None = None, url: str | None = None) -> Obj:
    """Exactly one of ``service`` and ``url``; ``ca_bundle`` is the PEM that signed the serving certificate."""
    if (service is None) == (url is None):
        raise ValueError("give exactly one of service and url")
    pem = ca_bundle.encode() if isinstance(ca_bundle, str) else ca_bundle
    out: Obj = {"caBundle": base64.b64encode(pem).decode()}
    if service is not None:
        out["service"] = {
            "name": service.name,
            "namespace": service.namespace,
            "path": service.path,
            "port": service.port,
        }
    else:
        out["url"] = url
    return out


def _webhook(name: str, rules: tuple[dict[str, Any], ...], clients: Obj, namespace_selector: Obj) -> Obj:
    return {
        "name": name,
        "admissionReviewVersions": ["v1beta1", "v1"],
        "clientConfig": copy.deepcopy(clients),
        "failurePolicy": "Fail",
        "matchPolicy": "Exact",
        "namespaceSelector": copy.deepcopy(namespace_selector),
        "rules": copy.deepcopy(list(rules)),
        "sideEffects": "None",
        "timeoutSeconds": 10,
    }


def validating_webhook_configuration(
    ca_bundle: bytes | str,
    *,
    service: ServiceReference | None = None,
    url: str | None = None,
    name: str = CONFIGURATION_NAME,
    namespace_selector: Obj | None = None,
) -> Obj:
    """The ValidatingWebhookConfiguration; ``namespace_selector`` (default ``{}``: all) scopes every webhook."""
    clients = client_config(ca_bundle, service=service, url=url)
    etcd_clients = client_config(
        ca_bundle,
        service=None if service is None else dataclasses.replace(service, path=ETCDS_WEBHOOK_PATH),
        url=None if url is None else url.removesuffix(WEBHOOK_PATH) + ETCDS_WEBHOOK_PATH,
    )
    selector = namespace_selector or {}
    components = _webhook(WEBHOOK_NAME, COMPONENT_RULES, clients, selector)
    components["objectSelector"] = {"matchLabels": {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE}}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "etcd-druid"}},
        "webhooks": [
            components,
            _webhook(STS_SCALE_WEBHOOK_NAME, STS_SCALE_RULES, clients, selector),
            _webhook(PVC_WEBHOOK_NAME, PVC_RULES, clients, selector),
            _webhook(ETCDS_WEBHOOK_NAME, ETCDS_RULES, etcd_clients, selector),
        ],
    }
