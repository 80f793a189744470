"""etcd-druid's OperatorConfiguration (config.druid.gardener.cloud/v1alpha1): see :mod:`druid.config.operator`."""

from druid.config.operator import (
    ConfigError,
    EtcdControllerConfiguration,
    OperatorConfiguration,
    default_configuration,
    from_deprecated_flags,
    load,
    validate,
)

__all__ = [
    "ConfigError",
    "EtcdControllerConfiguration",
    "OperatorConfiguration",
    "default_configuration",
    "from_deprecated_flags",
    "load",
    "validate",
]
