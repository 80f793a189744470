"""REST resources of druid's own kinds (for ``druid.runtime.client.Kube`` and the informers)."""

from __future__ import annotations

from druid.api import constants as c
from druid.runtime.objects import ResourceRef

ETCDS = ResourceRef(c.GROUP, c.VERSION, "etcds", c.KIND_ETCD)
ETCD_OPS_TASKS = ResourceRef(c.GROUP, c.VERSION, "etcdopstasks", c.KIND_ETCD_OPS_TASK)
ETCD_COPY_BACKUPS_TASKS = ResourceRef(c.GROUP, c.VERSION, "etcdcopybackupstasks", c.KIND_ETCD_COPY_BACKUPS_TASK)
