"""etcd-druid's OperatorConfiguration (config.druid.gardener.cloud/v1alpha1): see :mod:`druid.config.operator`.

The modules form layers without a cycle (each imports only those listed before it): ``errors``,
``features``, ``operator``, ``servers``, ``validation``, ``flags``, ``loader``, ``images``.
"""

from druid.config.errors import ConfigError, FieldError
from druid.config.flags import from_deprecated_flags
from druid.config.loader import load, read
from druid.config.operator import EtcdControllerConfiguration, OperatorConfiguration, default_configuration, parse
from druid.config.validation import validate

__all__ = [
    "ConfigError",
    "EtcdControllerConfiguration",
    "FieldError",
    "OperatorConfiguration",
    "default_configuration",
    "from_deprecated_flags",
    "load",
    "parse",
    "read",
    "validate",
]
