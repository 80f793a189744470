"""EtcdCopyBackupsTask controller (upstream ``internal/controller/etcdcopybackupstask``; docs/compatibility.md,
items H54–H56).

``job.py`` builds the ``<task>-worker`` Job (pure), ``reconciler.py`` drives finalizer, Job and status,
``setup.py`` wires informers and workers.
"""
