"""etcd-druid's resource-protection webhook: guards the objects druid manages for an Etcd (items K62–K64 of
docs/compatibility.md).

- :mod:`druid.webhook.protection`: the decision for one AdmissionRequest (pure, lookups injected);
- :mod:`druid.webhook.lookups`: those lookups against a cluster (Etcds from the informer cache if any);
- :mod:`druid.webhook.server`: the HTTPS AdmissionReview endpoint and ``add_webhook(manager, ...)``;
- :mod:`druid.webhook.configuration`: the ValidatingWebhookConfiguration that points the API server at it.
"""
