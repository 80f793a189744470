"""The ``etcds`` admission decision (druid extension): CREATE/UPDATE of an Etcd against druid's admission
policy (:mod:`druid.api.admission`).

- CREATE, and UPDATE that changes ``spec``: denied (403) with every violation, ``<field>: <reason>``;
- UPDATE that leaves ``spec`` as it was (annotations, finalizers, labels) and any change by druid's own
  user: allowed — an Etcd admitted under an older, looser policy can still be annotated, reconciled and
  deleted; the reconciler refuses to act on its spec instead (``ERR_INVALID_SPEC``);
- other operations and kinds: allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from druid.api import constants as c
from druid.api.admission import AdmissionPolicy, violations
from druid.webhook.protection import Decision, group_kind

ETCD_GROUP_KIND = (c.GROUP, c.KIND_ETCD)


def review_etcd(request: Mapping[str, Any], policy: AdmissionPolicy, reconciler: str) -> Decision:
    operation = str(request.get("operation") or "")
    if group_kind(request) != ETCD_GROUP_KIND or operation not in ("CREATE", "UPDATE"):
        return Decision.allow("not an Etcd CREATE or UPDATE")
    new, old = request.get("object"), request.get("oldObject")
    if not isinstance(new, dict):
        return Decision.errored(400, "the AdmissionRequest carries no Etcd")
    if policy.allows_everything:
        return Decision.allow("the admission policy allows everything")
    user = str((request.get("userInfo") or {}).get("username") or "")
    if user == reconciler:
        return Decision.allow("changes by etcd-druid are allowed")
    if operation == "UPDATE" and isinstance(old, dict) and old.get("spec") == new.get("spec"):
        return Decision.allow("the spec is unchanged")
    if found := violations(policy, new):
        return Decision.deny("the Etcd asks for what druid's admission policy forbids: " + "; ".join(found))
    return Decision.allow("the Etcd is within druid's admission policy")
