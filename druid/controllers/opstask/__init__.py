"""EtcdOpsTask controller (upstream ``internal/controller/etcdopstask``; docs/compatibility.md, I57–I60).

``status.py`` is the state machine (pure), ``handlers.py`` the handler registry and the OnDemandSnapshot
handler, ``reconciler.py`` the task and deletion flows, ``setup.py`` the wiring.
"""
