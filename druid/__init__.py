"""druid: a Python implementation of Gardener's etcd-druid."""

__version__ = "0.1.0"

from druid.runtime import lightimports as _lightimports

_lightimports.install()  # before anything imports kubernetes_asyncio: its API models load only when used
