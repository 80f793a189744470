"""One function builds the component options (BuildOptions) from the operator configuration."""

from __future__ import annotations

from druid.components.options import build_options
from druid.config.images import load_images
from druid.config.operator import OperatorConfiguration


def config(gates: dict[str, bool], automount_off: bool = False) -> OperatorConfiguration:
    return OperatorConfiguration.model_validate(
        {
            "featureGates": gates,
            "controllers": {"etcd": {"disableEtcdServiceAccountAutomount": automount_off}},
        }
    )


def test_defaults_without_a_configuration() -> None:
    opts = build_options()
    assert opts.images == load_images()
    assert (opts.feature_gates, opts.disable_etcd_service_account_automount) == ({}, False)


def test_configuration_gates_select_the_next_images_and_flags_override_single_gates() -> None:
    opts = build_options(config({"UpgradeEtcdVersion": True}, automount_off=True))
    assert opts.images == load_images(upgrade_etcd_version=True) != load_images()
    assert opts.feature_gates == {"UpgradeEtcdVersion": True}
    assert opts.disable_etcd_service_account_automount
    overridden = build_options(config({"UpgradeEtcdVersion": True}), feature_gates={"UpgradeEtcdVersion": False})
    assert overridden.images == load_images() and overridden.feature_gates == {"UpgradeEtcdVersion": False}


def test_the_automount_flag_can_only_disable() -> None:
    assert build_options(config({}), disable_etcd_service_account_automount=True).disable_etcd_service_account_automount
    assert build_options(config({}, automount_off=True)).disable_etcd_service_account_automount
    assert not build_options(config({})).disable_etcd_service_account_automount
