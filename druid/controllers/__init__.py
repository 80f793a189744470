"""druid's controllers and their registration with the manager."""

from __future__ import annotations

from druid.config.operator import OperatorConfiguration
from druid.runtime.manager import Manager


def register(manager: Manager, config: OperatorConfiguration) -> None:
    """Add every enabled controller to ``manager``, configured from ``config.controllers``.

    As upstream: the Etcd, EtcdOpsTask and Secret controllers always run (and druid's verified-restore
    scheduler, which does nothing for Etcds without its annotation); compaction only when
    ``controllers.compaction.enabled``. Unlike upstream (which registers it regardless), the
    EtcdCopyBackupsTask controller honours ``controllers.etcdCopyBackupsTask.enabled`` — the deprecated
    flag and the Helm chart both enable it, so only a config file that explicitly leaves it off differs.
    """
    from druid.controllers.compaction.metrics import compaction_metrics
    from druid.controllers.compaction.setup import add_compaction_controller
    from druid.controllers.copybackups.setup import add_copy_backups_controller
    from druid.controllers.etcd.setup import add_etcd_controller
    from druid.controllers.opstask.restoreschedule import add_restore_schedule_controller
    from druid.controllers.opstask.setup import add_ops_task_controller
    from druid.controllers.secret import add_secret_controller

    add_etcd_controller(manager, config)
    add_secret_controller(manager, config)
    add_ops_task_controller(manager, config)
    add_restore_schedule_controller(manager)  # druid's own; acts on Etcds with a verified-restore schedule only
    if config.controllers.etcd_copy_backups_task.enabled:
        add_copy_backups_controller(manager, config)
    # etcddruid_compaction_* series exist even when compaction is off, as upstream registers them at init.
    compaction_metrics(manager.registry)
    if config.controllers.compaction.enabled:
        add_compaction_controller(manager, config)
