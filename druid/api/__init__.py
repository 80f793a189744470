"""The druid.gardener.cloud/v1alpha1 API: models of Etcd, EtcdCopyBackupsTask and EtcdOpsTask.

Modules: ``etcd``, ``copybackupstask``, ``opstask`` (the kinds), ``common`` and ``store`` (shared
types), ``constants`` (annotations, labels, finalizers, conditions), ``names`` (names of managed
objects), ``defaults`` (operator-side defaults), ``quantity`` and ``duration`` (Kubernetes/Go value
formats), ``schema`` and ``crds`` (CRD generation: ``python -m druid.api.crds``).
"""

from druid.api.copybackupstask import EtcdCopyBackupsTask
from druid.api.etcd import Etcd
from druid.api.opstask import EtcdOpsTask

__all__ = ["Etcd", "EtcdCopyBackupsTask", "EtcdOpsTask"]
