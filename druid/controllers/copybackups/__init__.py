"""EtcdCopyBackupsTask controller (upstream ``internal/controller/etcdcopybackupstask``, spec §3.3, checklist H54-H56).

``job.py`` builds the ``<task>-worker`` Job (pure), ``reconciler.py`` drives finalizer, Job and status,
``setup.py`` wires informers and workers.
"""
