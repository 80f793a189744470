"""Snapshot compaction controller (upstream ``internal/controller/compaction``; docs/compatibility.md, G49–G53).

``setup.add_compaction_controller(manager, config)`` adds it; ``job.build`` is the pure Job builder,
``fullsnapshot`` the backup-restore HTTP call, ``metrics`` the ``etcddruid_compaction_*`` families.
"""
