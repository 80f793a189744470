"""The component options (:class:`BuildOptions`) from the operator configuration: one place builds them.

Images come from the image vector (``IMAGEVECTOR_OVERWRITE`` applied); the ``UpgradeEtcdVersion`` feature
gate selects the ``-next`` images. ``druid run`` builds the options from its OperatorConfiguration;
``druid render`` from an optional configuration plus its flags (gates override single gates, the automount
flag can only disable).
"""

from __future__ import annotations

from collections.abc import Mapping

from druid.components.base import BuildOptions
from druid.config import features
from druid.config.images import load_images
from druid.config.operator import OperatorConfiguration


def build_options(
    config: OperatorConfiguration | None = None,
    *,
    feature_gates: Mapping[str, bool] | None = None,
    disable_etcd_service_account_automount: bool = False,
) -> BuildOptions:
    """Options of ``config`` (None: defaults), ``feature_gates`` overriding its gates; raises ``ImageVectorError``."""
    gates = dict(config.feature_gates) if config is not None else {}
    gates.update(feature_gates or {})
    automount_disabled = disable_etcd_service_account_automount or bool(
        config is not None and config.controllers.etcd.disable_etcd_service_account_automount
    )
    return BuildOptions(
        images=load_images(upgrade_etcd_version=features.is_enabled(gates, features.UPGRADE_ETCD_VERSION)),
        disable_etcd_service_account_automount=automount_disabled,
        feature_gates=gates,
    )
