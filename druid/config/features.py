"""Feature gates (etcd-druid api/config/v1alpha1/features.go).

Known gates: ``UseEtcdWrapper`` (GA, locked to true: setting it false is an error; consulted nowhere)
and ``UpgradeEtcdVersion`` (alpha, default false), and one of druid's own: ``OrderedMemberUpdate`` (alpha,
default false; the StatefulSet uses ``OnDelete`` and druid replaces out-of-date members itself, quorum-aware,
see docs/member-updates.md). Unknown gates are an error.

:func:`is_enabled` answers like upstream's ``IsEnabled``: only an explicitly set value counts, so an
unset gate is disabled even when its default is true. Every reader of a gate goes through it. This module is
a leaf of ``druid.config``: it imports nothing from the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

USE_ETCD_WRAPPER = "UseEtcdWrapper"
UPGRADE_ETCD_VERSION = "UpgradeEtcdVersion"
ORDERED_MEMBER_UPDATE = "OrderedMemberUpdate"  # druid's own, not etcd-druid's


@dataclass(frozen=True)
class FeatureSpec:
    maturity: Literal["alpha", "beta", "ga"]
    default: bool
    locked: bool


ALPHA = FeatureSpec("alpha", default=False, locked=False)
BETA = FeatureSpec("beta", default=True, locked=False)
GA = FeatureSpec("ga", default=True, locked=True)

KNOWN: dict[str, FeatureSpec] = {
    USE_ETCD_WRAPPER: GA,
    UPGRADE_ETCD_VERSION: ALPHA,
    ORDERED_MEMBER_UPDATE: ALPHA,
}


def gate_errors(gates: dict[str, bool]) -> dict[str, str]:
    """``{gate: message}`` for each unknown gate or locked gate set away from its default."""
    errors: dict[str, str] = {}
    for name, enabled in gates.items():
        spec = KNOWN.get(name)
        if spec is None:
            errors[name] = f"unknown feature {name}"
        elif spec.locked and enabled != spec.default:
            errors[name] = f"feature {name} is locked to default value {str(spec.default).lower()}"
    return errors


def is_enabled(gates: Mapping[str, bool], name: str) -> bool:
    """Whether ``gates`` (``featureGates``) explicitly enables ``name`` (unset ⇒ false).

    The one way druid reads a feature gate. Unknown names raise ``KeyError``.
    """
    if name not in KNOWN:
        raise KeyError(f"unknown feature gate {name!r}")
    return bool(gates.get(name, False))
