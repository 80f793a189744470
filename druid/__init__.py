"""druid: a Python implementation of Gardener's etcd-druid."""

__version__ = "0.1.0"
