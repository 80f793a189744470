"""OperatorConfiguration: upstream defaults, deprecated flags, validation rules, durations, feature gates (L65, L66)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from druid.cli import main as cli
from druid.cli import run
from druid.config import (
    ConfigError,
    OperatorConfiguration,
    default_configuration,
    features,
    flags,
    from_deprecated_flags,
    load,
    parse,
    read,
    validate,
)
from druid.config.operator import API_VERSION
from druid.config.servers import metrics_listen
from druid.gocompat.net import split_host_port
from druid.runtime.client import PerResourceLimits, TokenBucket, resource_of

HEAD = {"apiVersion": API_VERSION, "kind": "OperatorConfiguration"}

# Every field of an empty config file after upstream's SetObjectDefaults (defaults.go), on the wire.
UPSTREAM_DEFAULTS: dict[str, Any] = {
    **HEAD,
    "clientConnection": {"qps": 100.0, "burst": 150, "contentType": "", "acceptContentTypes": ""},
    "leaderElection": {
        "enabled": False,  # the other defaults apply only when enabled
        "leaseDuration": "0s",
        "renewDeadline": "0s",
        "retryPeriod": "0s",
        "resourceLock": "",
        "resourceName": "",
    },
    "server": {
        "webhooks": {"bindAddress": "", "port": 9443, "serverCertDir": "/etc/webhook-server-tls"},
        "metrics": {"bindAddress": "", "port": 8080},
    },
    "controllers": {
        "disableLeaseCache": False,
        "etcd": {
            "concurrentSyncs": 3,
            "enableEtcdSpecAutoReconcile": False,
            "disableEtcdServiceAccountAutomount": False,
            "etcdStatusSyncPeriod": "15s",
            "etcdMember": {"notReadyThreshold": "5m0s", "unknownThreshold": "1m0s"},
        },
        "compaction": {  # disabled: no defaults (concurrentSyncs stays unset)
            "enabled": False,
            "eventsThreshold": 0,
            "triggerFullSnapshotThreshold": 0,
            "activeDeadlineDuration": "0s",
            "metricsScrapeWaitDuration": "0s",
        },
        "etcdCopyBackupsTask": {"enabled": False},
        "secret": {"concurrentSyncs": 10},
        "etcdOpsTask": {"concurrentSyncs": 3, "requeueInterval": "15s"},
    },
    "webhooks": {"etcdComponentProtection": {"enabled": False, "exemptServiceAccounts": []}},
    "featureGates": {},
    "logging": {"logLevel": "info", "logFormat": "json"},
}


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def run_args(*argv: str) -> argparse.Namespace:
    args, _ = cli.build_parser().parse_known_args(["run", *argv])
    return args


# ---------------------------------------------------------------------------------------------- L65


def test_l65_defaults_match_upstream(tmp_path: Path) -> None:
    assert default_configuration().to_dict() == UPSTREAM_DEFAULTS
    assert load(write(tmp_path, HEAD)).to_dict() == UPSTREAM_DEFAULTS
    assert validate(default_configuration()) == []

    enabled = load(
        write(
            tmp_path,
            {
                **HEAD,
                "leaderElection": {"enabled": True},
                "controllers": {"compaction": {"enabled": True}, "etcdCopyBackupsTask": {"enabled": True}},
            },
        )
    ).to_dict()
    assert enabled["leaderElection"] == {
        "enabled": True,
        "leaseDuration": "15s",
        "renewDeadline": "10s",
        "retryPeriod": "2s",
        "resourceLock": "leases",
        "resourceName": "druid-leader-election",
    }
    assert enabled["controllers"]["compaction"] == {
        "enabled": True,
        "concurrentSyncs": 3,
        "eventsThreshold": 1000000,
        "triggerFullSnapshotThreshold": 3000000,
        "activeDeadlineDuration": "3h0m0s",
        "metricsScrapeWaitDuration": "0s",
    }
    assert enabled["controllers"]["etcdCopyBackupsTask"] == {"enabled": True, "concurrentSyncs": 3}


def test_l65_zero_values_are_defaulted_like_go_but_pointers_are_not(tmp_path: Path) -> None:
    doc = {
        **HEAD,
        "clientConnection": {"qps": 0, "burst": 0},
        "controllers": {"etcd": {"etcdStatusSyncPeriod": "0s", "etcdMember": {"unknownThreshold": "0s"}}},
        "logging": {"logLevel": "", "logFormat": ""},
        "server": {"webhooks": {"serverCertDir": ""}},
        "featureGates": None,  # null is "absent"
    }
    cfg, _ = parse(doc)
    assert (cfg.client_connection.qps, cfg.client_connection.burst) == (100.0, 150)
    assert cfg.controllers.etcd.etcd_status_sync_period == 15.0
    assert cfg.controllers.etcd.etcd_member.unknown_threshold == 60.0
    assert (cfg.logging.log_level, cfg.logging.log_format) == ("info", "json")
    assert cfg.server.webhooks.server_cert_dir == "/etc/webhook-server-tls"
    # Pointers upstream: an explicit 0 is kept (and rejected by validation).
    cfg, _ = parse(
        {**HEAD, "controllers": {"etcdOpsTask": {"requeueInterval": "0s"}, "secret": {"concurrentSyncs": 0}}}
    )
    assert [str(e) for e in validate(cfg)] == [
        "controllers.secret.concurrentSyncs: must be greater than 0",
        "controllers.etcdOpsTask.requeueInterval: must be greater than 0",
    ]


def test_l65_deprecated_flags_when_no_config_file(tmp_path: Path) -> None:
    cfg = from_deprecated_flags(run_args())
    expected = merge(
        UPSTREAM_DEFAULTS,
        {
            # Flag defaults are copied whether or not the feature is enabled (ToOperatorConfiguration) ...
            "leaderElection": {"resourceLock": "leases", "resourceName": "druid-leader-election"},
            "controllers": {
                "compaction": {"concurrentSyncs": 3, "eventsThreshold": 1000000, "activeDeadlineDuration": "3h0m0s"},
                # ... and the copy-backups-task controller is on by default with flags.
                "etcdCopyBackupsTask": {"enabled": True, "concurrentSyncs": 3},
            },
        },
    )
    assert cfg.to_dict() == expected

    cfg = from_deprecated_flags(
        run_args(
            "--metrics-bind-address=127.0.0.1", "--metrics-port", "9090",
            "--webhook-server-bind-address=0.0.0.0", "--webhook-server-port=9444",
            "--webhook-server-tls-server-cert-dir=/certs",
            "--enable-leader-election", "--leader-election-id=my-lock",
            "--disable-lease-cache=true",
            "--etcd-workers=7", "--enable-etcd-spec-auto-reconcile", "--disable-etcd-serviceaccount-automount=1",
            "--etcd-status-sync-period=30s", "--etcd-member-notready-threshold=10m",
            "--etcd-member-unknown-threshold=90s",
            "--enable-backup-compaction=true", "--compaction-workers=2", "--etcd-events-threshold=500",
            "--active-deadline-duration=1h30m", "--metrics-scrape-wait-duration=1m",
            "--enable-etcd-copy-backups-task=false", "--etcd-copy-backups-task-workers=4",
            "--etcd-ops-task-workers=5", "--etcd-ops-task-requeue-interval=20s", "--secret-workers=6",
            "--enable-etcd-components-webhook", "--reconciler-service-account=system:serviceaccount:ns:druid",
            "--etcd-components-webhook-exempt-service-accounts=a,b",
            "--etcd-components-webhook-exempt-service-accounts=c",
            "--feature-gates=UpgradeEtcdVersion=true,broken,Other=maybe",
        )
    )  # fmt: skip
    assert validate(cfg) == []
    assert metrics_listen(cfg) == ("127.0.0.1", 9090)
    w = cfg.server.webhooks
    assert (w.bind_address, w.port, w.server_cert_dir) == ("0.0.0.0", 9444, "/certs")
    le = cfg.leader_election
    assert (le.enabled, le.resource_name, le.resource_lock, le.lease_duration) == (True, "my-lock", "leases", 15.0)
    c = cfg.controllers
    assert c.disable_lease_cache
    assert (c.etcd.concurrent_syncs, c.etcd.enable_etcd_spec_auto_reconcile) == (7, True)
    assert c.etcd.disable_etcd_service_account_automount
    assert (c.etcd.etcd_status_sync_period, c.etcd.etcd_member.not_ready_threshold) == (30.0, 600.0)
    assert c.etcd.etcd_member.unknown_threshold == 90.0
    assert c.compaction.model_dump(by_alias=False) == {
        "enabled": True,
        "concurrent_syncs": 2,
        "events_threshold": 500,
        "trigger_full_snapshot_threshold": 3000000,  # no flag: defaulted
        "active_deadline_duration": 5400.0,
        "metrics_scrape_wait_duration": 60.0,
    }
    assert (c.etcd_copy_backups_task.enabled, c.etcd_copy_backups_task.concurrent_syncs) == (False, 4)
    assert (c.etcd_ops_task.concurrent_syncs, c.etcd_ops_task.requeue_interval, c.secret.concurrent_syncs) == (5, 20, 6)
    wh = cfg.webhooks.etcd_component_protection
    assert wh.enabled and wh.reconciler_service_account == "system:serviceaccount:ns:druid"
    assert wh.exempt_service_accounts == ["a", "b", "c"]
    assert cfg.feature_gates == {"UpgradeEtcdVersion": True}  # bad pairs skipped
    assert features.is_enabled(cfg.feature_gates, features.UPGRADE_ETCD_VERSION)

    # With --config, deprecated flags are ignored.
    args = run_args("--config", str(write(tmp_path, HEAD)), "--etcd-workers=9", "--enable-leader-election")
    cfg, _ = run.resolve_configuration(args)
    assert cfg.controllers.etcd.concurrent_syncs == 3 and not cfg.leader_election.enabled
    assert not cfg.controllers.etcd_copy_backups_task.enabled
    # druid's own --log-* flags override `logging` either way.
    cfg, _ = run.resolve_configuration(run_args("--config", str(write(tmp_path, HEAD)), "--log-format", "text"))
    assert cfg.logging.log_format == "text"


def test_l65_unknown_flags_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--unknown-flag=1", "--another", "value", "--etcd-work", "5", "--kube-api-qps=20", "stray"]
    args = run_args(*argv)
    assert args.etcd_workers == 3  # no abbreviations: --etcd-work is unknown, not --etcd-workers
    assert from_deprecated_flags(args).controllers.etcd.concurrent_syncs == 3
    # Through the real entry point: no argparse error; druid gets as far as the (invalid) config.
    bad = write(tmp_path, merge(HEAD, {"controllers": {"etcd": {"concurrentSyncs": 0}}}))
    assert cli.main(["run", *argv, "--config", str(bad)]) == 2
    assert "druid run: invalid configuration: controllers.etcd.concurrentSyncs: must be greater than 0" in (
        capsys.readouterr().err
    )


def test_l65_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--version", "--config", "/nonexistent"]) == 0
    assert capsys.readouterr().out.startswith("druid ")


def test_l65_chart_drifted_keys_accepted_with_deprecation_notes(tmp_path: Path) -> None:
    # Shape of upstream's cmd/opts/testdata/operatorconfig.yaml and the chart's logConfiguration/acceptContentType.
    doc = {
        **HEAD,
        "clientConnection": {"qps": 150, "burst": 250, "acceptContentType": "application/json"},
        "server": {
            "webhooks": {"server": {"port": 2750}, "tlsConfig": {"serverCertDir": "/var/etcd/ssl/webhook-server-tls"}},
            "metrics": {"port": 2751},
        },
        "logConfiguration": {"logLevel": "debug", "logFormat": "text"},
    }
    cfg, notes = read(write(tmp_path, doc))
    assert (cfg.server.webhooks.port, cfg.server.webhooks.server_cert_dir) == (2750, "/var/etcd/ssl/webhook-server-tls")
    assert cfg.client_connection.accept_content_types == "application/json"
    assert (cfg.logging.log_level, cfg.logging.log_format) == ("debug", "text")
    assert len(notes) == 4 and all("deprecated" in n for n in notes)
    # The type's key wins over its drifted twin.
    cfg, notes = parse({**HEAD, "logging": {"logLevel": "error"}, "logConfiguration": {"logLevel": "debug"}})
    assert cfg.logging.log_level == "error" and "ignored" in notes[0]


# ---------------------------------------------------------------------------------------------- L66

LE_ON = {"leaderElection": {"enabled": True}}
WEBHOOK = {"webhooks": {"etcdComponentProtection": {"enabled": True}}}
SA = {"serviceAccountInfo": {"name": "etcd-druid", "namespace": "garden"}}
FQDN = {"reconcilerServiceAccountFQDN": "system:serviceaccount:garden:etcd-druid"}
COMPACTION = {"controllers": {"compaction": {"enabled": True}}}


def ctl(name: str, **fields: Any) -> dict[str, Any]:
    return {"controllers": {name: fields}}


INVALID: list[tuple[dict[str, Any], str]] = [
    (ctl("etcd", concurrentSyncs=0), "controllers.etcd.concurrentSyncs: must be greater than 0"),
    (ctl("etcd", concurrentSyncs=-1), "controllers.etcd.concurrentSyncs: must be greater than 0"),
    (ctl("etcd", etcdStatusSyncPeriod="-1s"), "controllers.etcd.etcdStatusSyncPeriod: must be greater than 0"),
    (
        ctl("etcd", etcdMember={"notReadyThreshold": "-5m"}),
        "controllers.etcd.etcdMember.notReadyThreshold: must be greater than 0",
    ),
    (
        ctl("etcd", etcdMember={"unknownThreshold": "-1m"}),
        "controllers.etcd.etcdMember.unknownThreshold: must be greater than 0",
    ),
    (ctl("secret", concurrentSyncs=0), "controllers.secret.concurrentSyncs: must be greater than 0"),
    (ctl("etcdOpsTask", concurrentSyncs=0), "controllers.etcdOpsTask.concurrentSyncs: must be greater than 0"),
    (ctl("etcdOpsTask", requeueInterval="-15s"), "controllers.etcdOpsTask.requeueInterval: must be greater than 0"),
    (
        ctl("compaction", enabled=True, concurrentSyncs=0),
        "controllers.compaction.concurrentSyncs: must be greater than 0",
    ),
    (
        ctl("compaction", enabled=True, eventsThreshold=-1),
        "controllers.compaction.eventsThreshold: must be greater than 0",
    ),
    (
        ctl("compaction", enabled=True, triggerFullSnapshotThreshold=-1),
        "controllers.compaction.triggerFullSnapshotThreshold: must be greater than 0",
    ),
    (
        ctl("compaction", enabled=True, activeDeadlineDuration="-3h"),
        "controllers.compaction.activeDeadlineDuration: must be greater than 0",
    ),
    (
        ctl("compaction", enabled=True, metricsScrapeWaitDuration="-1s"),
        "controllers.compaction.metricsScrapeWaitDuration: must be greater than or equal to 0",
    ),
    (
        ctl("etcdCopyBackupsTask", enabled=True, concurrentSyncs=0),
        "controllers.etcdCopyBackupsTask.concurrentSyncs: must be greater than 0",
    ),
    ({"clientConnection": {"burst": -1}}, "clientConnection.burst: must be non-negative"),
    (
        merge(LE_ON, {"leaderElection": {"leaseDuration": "10s", "renewDeadline": "10s"}}),
        "leaderElection.leaseDuration: LeaseDuration must be greater than RenewDeadline",
    ),
    (merge(LE_ON, {"leaderElection": {"retryPeriod": "-2s"}}), "leaderElection.retryPeriod: must be greater than 0"),
    (
        merge(LE_ON, {"leaderElection": {"resourceLock": "configmaps"}}),
        'leaderElection.resourceLock: Unsupported value: "configmaps": supported values: "leases"',
    ),
    (
        WEBHOOK,
        "webhooks.etcdComponentProtection: either reconcilerServiceAccountFQDN or serviceAccountInfo must be set",
    ),
    (
        merge(WEBHOOK, {"webhooks": {"etcdComponentProtection": {**SA, **FQDN}}}),
        "webhooks.etcdComponentProtection: only one of reconcilerServiceAccountFQDN or serviceAccountInfo "
        "can be set but not both.",
    ),
    (
        merge(WEBHOOK, {"webhooks": {"etcdComponentProtection": {"serviceAccountInfo": {"name": "druid"}}}}),
        "webhooks.etcdComponentProtection.serviceAccountInfo.namespace: namespace is required",
    ),
    (
        merge(WEBHOOK, {"webhooks": {"etcdComponentProtection": {"reconcilerServiceAccountFQDN": " "}}}),
        "webhooks.etcdComponentProtection.reconcilerServiceAccountFQDN: must not be empty",
    ),
    ({"featureGates": {"NoSuchFeature": True}}, "featureGates.NoSuchFeature: unknown feature NoSuchFeature"),
    (
        {"featureGates": {"UseEtcdWrapper": False}},
        "featureGates.UseEtcdWrapper: feature UseEtcdWrapper is locked to default value true",
    ),
    (
        {"logging": {"logLevel": "trace"}},
        'logging.logLevel: Unsupported value: "trace": supported values: "debug", "info", "error"',
    ),
    (
        {"logging": {"logFormat": "xml"}},
        'logging.logFormat: Unsupported value: "xml": supported values: "json", "text"',
    ),
    ({"server": {"metrics": {"bindAddress": "::1"}}}, "server.metrics.bindAddress: '::1' is not host:port"),
    # Schema errors, also with the field path.
    (ctl("etcd", workers=3), "controllers.etcd.workers: unknown field"),
    (ctl("etcd", concurrentSyncs="3"), "controllers.etcd.concurrentSyncs: Input should be a valid integer"),
    (ctl("etcd", etcdStatusSyncPeriod=15), "controllers.etcd.etcdStatusSyncPeriod: must be a duration string"),
    (ctl("etcd", etcdStatusSyncPeriod="15"), "controllers.etcd.etcdStatusSyncPeriod: missing unit in duration"),
    ({"apiVersion": "config.druid.gardener.cloud/v1beta1"}, "apiVersion: Input should be"),
    ({"kind": ""}, "kind: required"),
]


@pytest.mark.parametrize(
    ("patch", "error"), INVALID, ids=[e.split(":")[0] + f"-{i}" for i, (_, e) in enumerate(INVALID)]
)
def test_l66_invalid_configs_name_the_field(tmp_path: Path, patch: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, merge(HEAD, patch)))
    messages = [str(e) for e in info.value.errors]
    assert any(m.startswith(error) for m in messages), messages


@pytest.mark.parametrize(
    "patch",
    [
        merge(WEBHOOK, {"webhooks": {"etcdComponentProtection": SA}}),
        merge(WEBHOOK, {"webhooks": {"etcdComponentProtection": FQDN}}),
        ctl("compaction", enabled=False, concurrentSyncs=0, activeDeadlineDuration="-1s"),  # not checked when off
        {"leaderElection": {"enabled": False, "leaseDuration": "1s", "renewDeadline": "5s"}},
        {"clientConnection": {"qps": -1}},  # disables the rate limit
        {"featureGates": {"UseEtcdWrapper": True, "UpgradeEtcdVersion": True}},
        {"server": {"metrics": {"bindAddress": "127.0.0.1:9090"}}},
    ],
)
def test_l66_valid_edge_cases(tmp_path: Path, patch: dict[str, Any]) -> None:
    load(write(tmp_path, merge(HEAD, patch)))


def test_l66_unreadable_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("a: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load(write(tmp_path, ["x"]))


# ---------------------------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("wire", "seconds", "rendered"),
    [("15s", 15.0, "15s"), ("5m", 300.0, "5m0s"), ("1h30m", 5400.0, "1h30m0s"), ("1.5s", 1.5, "1.5s"),
     ("100ms", 0.1, "100ms"), ("90m", 5400.0, "1h30m0s"), ("0s", 0.0, "0s")],
)  # fmt: skip
def test_durations_round_trip(wire: str, seconds: float, rendered: str) -> None:
    cfg, _ = parse({**HEAD, "controllers": {"compaction": {"enabled": True, "metricsScrapeWaitDuration": wire}}})
    assert cfg.controllers.compaction.metrics_scrape_wait_duration == seconds
    out = cfg.to_dict()
    assert out["controllers"]["compaction"]["metricsScrapeWaitDuration"] == rendered
    again, _ = parse(out)
    assert again == cfg


def test_durations_are_seconds_from_python() -> None:
    cfg = OperatorConfiguration.model_validate({"controllers": {"etcd": {"etcd_status_sync_period": 30}}})
    assert cfg.controllers.etcd.etcd_status_sync_period == 30.0
    assert cfg.model_dump(by_alias=False)["controllers"]["etcd"]["etcd_status_sync_period"] == 30.0
    assert cfg.to_dict()["controllers"]["etcd"]["etcdStatusSyncPeriod"] == "30s"


# ---------------------------------------------------------------------------------------------- feature gates


def test_feature_gates() -> None:
    cfg = default_configuration()
    # Like upstream's IsEnabled: only explicitly set values count, even for a GA gate.
    assert not features.is_enabled(cfg.feature_gates, features.USE_ETCD_WRAPPER)
    assert not features.is_enabled(cfg.feature_gates, features.UPGRADE_ETCD_VERSION)
    cfg = OperatorConfiguration(feature_gates={"UpgradeEtcdVersion": True, "UseEtcdWrapper": True})
    assert features.is_enabled(cfg.feature_gates, features.UPGRADE_ETCD_VERSION)
    assert features.is_enabled(cfg.feature_gates, features.USE_ETCD_WRAPPER)
    with pytest.raises(KeyError):
        features.is_enabled(cfg.feature_gates, "Typo")
    assert features.gate_errors({"UpgradeEtcdVersion": False, "UseEtcdWrapper": True}) == {}
    assert flags.parse_feature_gates(" A = true , B=0,C,D=yes,E=T") == {"A": True, "B": False, "E": True}


# ---------------------------------------------------------------------------------------------- wiring


def test_manager_options_from_configuration(tmp_path: Path) -> None:
    doc = merge(
        HEAD,
        {
            "server": {"metrics": {"bindAddress": "127.0.0.1", "port": 0}},
            "leaderElection": {"enabled": True, "leaseDuration": "30s", "renewDeadline": "20s", "retryPeriod": "3s"},
        },
    )
    args = run_args("--config", str(write(tmp_path, doc)), "--leader-election-namespace", "ns", "--probe-port=0")
    cfg, _ = run.resolve_configuration(args)
    opts = run.manager_options(cfg, args)
    assert (opts.metrics_address, opts.metrics_port, opts.probe_port) == ("127.0.0.1", 0, 0)
    le = opts.leader_election
    assert (le.enabled, le.namespace, le.name) == (True, "ns", "druid-leader-election")
    assert (le.lease_duration, le.renew_deadline, le.retry_period, le.release_on_cancel) == (30, 20, 3, True)
    assert isinstance(run.limiter(cfg), PerResourceLimits)
    cfg.client_connection.qps = -1
    assert run.limiter(cfg) is None


def test_metrics_address_joins_bind_address_and_port() -> None:
    assert metrics_listen(default_configuration()) == ("", 8080)  # ":8080"
    cfg = default_configuration()
    cfg.server.metrics.bind_address = "127.0.0.1:9090"  # has a ':' ⇒ used as is, port ignored
    assert metrics_listen(cfg) == ("127.0.0.1", 9090)
    assert split_host_port(":8080") == ("", 8080)
    assert split_host_port("[::1]:8080") == ("::1", 8080)
    with pytest.raises(ValueError):
        split_host_port("localhost:http")


def test_token_bucket_allows_burst_then_qps() -> None:
    now = [0.0]
    bucket = TokenBucket(qps=10, burst=3, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)  # waiters queue up
    now[0] = 10.0  # refills, but never beyond burst
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)


def test_resource_of_request_paths() -> None:
    assert resource_of("/apis/apps/v1/namespaces/x/statefulsets/y/status") == ("apps/v1", "statefulsets")
    assert resource_of("/apis/apps/v1/namespaces/x/statefulsets") == ("apps/v1", "statefulsets")
    assert resource_of("/api/v1/namespaces/x/configmaps/c") == ("v1", "configmaps")
    assert resource_of("/api/v1/namespaces/x") == ("v1", "namespaces")
    assert resource_of("/api/v1/namespaces") == ("v1", "namespaces")
    assert resource_of("/api/v1/nodes/n") == ("v1", "nodes")
    assert resource_of("/apis/druid.gardener.cloud/v1alpha1/etcds?watch=1") == (
        "druid.gardener.cloud/v1alpha1",
        "etcds",
    )
    assert resource_of("/version") == ("", "version")


def test_client_limits_are_per_resource_like_etcd_druids_client() -> None:
    """etcd-druid's client has one REST client, hence one token bucket, per kind: a burst of ConfigMap writes
    does not delay Lease writes, and an object's /status shares its kind's bucket."""
    now = [0.0]
    limits = PerResourceLimits(qps=10, burst=2, clock=lambda: now[0])
    cm = "/api/v1/namespaces/x/configmaps"
    assert [limits.bucket(f"{cm}/c{i}").reserve() for i in range(3)] == [0.0, 0.0, pytest.approx(0.1)]
    assert limits.bucket("/apis/coordination.k8s.io/v1/namespaces/x/leases/l").reserve() == 0.0
    sts = "/apis/apps/v1/namespaces/x/statefulsets/s"
    assert [limits.bucket(sts).reserve(), limits.bucket(f"{sts}/status").reserve()] == [0.0, 0.0]
    assert limits.bucket(f"{sts}/status").reserve() == pytest.approx(0.1)
    with pytest.raises(ValueError):
        PerResourceLimits(qps=0, burst=1)
