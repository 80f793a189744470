"""etcd-druid's deprecated CLI flags (cmd/opts/deprecatedoptions.go), honoured when ``--config`` is absent.

Flag names and defaults are upstream's. Values parse like pflag's: booleans accept ``--flag`` and
``--flag=true|false|1|0|t|f``; integers accept Go base prefixes; durations are Go durations; the
exempt-service-accounts list is comma separated (repeatable). Note ``--enable-etcd-copy-backups-task``
defaults to true here (a config file defaults it to false), as upstream.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from typing import Any

from druid.config import operator as op
from druid.gocompat import duration as godur
from druid.gocompat import strconv


def parse_bool(text: str) -> bool:
    """A boolean flag value, as pflag reads it (``strconv.ParseBool``)."""
    try:
        return strconv.parse_bool(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def go_int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None


def go_duration(text: str) -> float:
    """A Go duration flag value, in seconds."""
    try:
        return godur.parse_duration(text) / godur.SECOND
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class _StringSlice(argparse.Action):
    """pflag's StringSlice: CSV values; the first use replaces the default, later uses append."""

    def __call__(
        self, parser: argparse.ArgumentParser, ns: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        items = [s for row in csv.reader([str(values)]) for s in row]
        current = getattr(ns, self.dest, None)
        first = not getattr(ns, f"_{self.dest}_seen", False)
        setattr(ns, f"_{self.dest}_seen", True)
        setattr(ns, self.dest, items if first or current is None else [*current, *items])


def _bool(g: Any, flag: str, default: bool, text: str) -> None:
    g.add_argument(flag, nargs="?", const=True, default=default, type=parse_bool, metavar="BOOL", help=text)


def add_deprecated_flags(p: argparse.ArgumentParser) -> None:
    """Add upstream's deprecated flags (dest = flag name with ``_``)."""
    g = p.add_argument_group("deprecated flags (used only without --config)")
    g.add_argument("--metrics-bind-address", default="", help="IP address the metrics endpoint binds to")
    g.add_argument("--metrics-port", type=go_int, default=op.DEFAULT_METRICS_SERVER_PORT, help="0: any free port")
    g.add_argument("--webhook-server-bind-address", default="", help="IP address of the HTTPS webhook server")
    g.add_argument("--webhook-server-port", type=go_int, default=op.DEFAULT_WEBHOOKS_SERVER_PORT)
    g.add_argument("--webhook-server-tls-server-cert-dir", default=op.DEFAULT_WEBHOOKS_SERVER_CERT_DIR)
    _bool(g, "--enable-leader-election", False, "enable leader election (run as one of several HA replicas)")
    g.add_argument("--leader-election-id", default=op.DEFAULT_LEADER_ELECTION_RESOURCE_NAME, help="leader Lease")
    g.add_argument("--leader-election-resource-lock", default=op.DEFAULT_LEADER_ELECTION_RESOURCE_LOCK)
    _bool(g, "--disable-lease-cache", False, "read Leases uncached")
    g.add_argument("--etcd-workers", type=go_int, default=op.DEFAULT_ETCD_CONCURRENT_SYNCS)
    _bool(g, "--enable-etcd-spec-auto-reconcile", False, "reconcile every Etcd spec change")
    _bool(g, "--disable-etcd-serviceaccount-automount", False, "automountServiceAccountToken false for etcd")
    g.add_argument("--etcd-status-sync-period", type=go_duration, default=op.DEFAULT_ETCD_STATUS_SYNC_PERIOD)
    g.add_argument(
        "--etcd-member-notready-threshold", type=go_duration, default=op.DEFAULT_ETCD_MEMBER_NOT_READY_THRESHOLD
    )
    g.add_argument(
        "--etcd-member-unknown-threshold", type=go_duration, default=op.DEFAULT_ETCD_MEMBER_UNKNOWN_THRESHOLD
    )
    _bool(g, "--enable-backup-compaction", False, "enable the compaction controller")
    g.add_argument("--compaction-workers", type=go_int, default=op.DEFAULT_COMPACTION_CONCURRENT_SYNCS)
    g.add_argument("--etcd-events-threshold", type=go_int, default=op.DEFAULT_COMPACTION_EVENTS_THRESHOLD)
    g.add_argument(
        "--active-deadline-duration", type=go_duration, default=op.DEFAULT_COMPACTION_ACTIVE_DEADLINE_DURATION
    )
    g.add_argument("--metrics-scrape-wait-duration", type=go_duration, default=0.0)
    _bool(g, "--enable-etcd-copy-backups-task", True, "enable the EtcdCopyBackupsTask controller")
    g.add_argument(
        "--etcd-copy-backups-task-workers", type=go_int, default=op.DEFAULT_ETCD_COPY_BACKUPS_TASK_CONCURRENT_SYNCS
    )
    g.add_argument("--etcd-ops-task-workers", type=go_int, default=op.DEFAULT_ETCD_OPS_TASK_CONCURRENT_SYNCS)
    g.add_argument(
        "--etcd-ops-task-requeue-interval", type=go_duration, default=op.DEFAULT_ETCD_OPS_TASK_REQUEUE_INTERVAL
    )
    g.add_argument("--secret-workers", type=go_int, default=op.DEFAULT_SECRET_CONCURRENT_SYNCS)
    _bool(g, "--enable-etcd-components-webhook", False, "enable the etcd-components protection webhook")
    g.add_argument("--reconciler-service-account", default="", help="druid's service-account user name")
    g.add_argument(
        "--etcd-components-webhook-exempt-service-accounts", action=_StringSlice, default=[], metavar="SA,..."
    )
    g.add_argument("--feature-gates", default="", help="k=v,... (UpgradeEtcdVersion=true|false)")


def parse_feature_gates(text: str) -> dict[str, bool]:
    """``k=v,...``; pairs without ``=`` or with a non-boolean value are skipped, as upstream."""
    gates: dict[str, bool] = {}
    for pair in text.split(","):
        key, sep, value = pair.strip().partition("=")
        if not sep:
            continue
        try:
            gates[key.strip()] = parse_bool(value.strip())
        except argparse.ArgumentTypeError:
            continue
    return gates


def from_deprecated_flags(args: argparse.Namespace) -> op.OperatorConfiguration:
    """The defaulted configuration the deprecated flags describe (upstream's ToOperatorConfiguration)."""
    a = args
    fqdn = a.reconciler_service_account if a.reconciler_service_account.strip() else None
    exempt: Sequence[str] = a.etcd_components_webhook_exempt_service_accounts or []
    return op.OperatorConfiguration.model_validate(
        {
            "server": {
                "metrics": {"bind_address": a.metrics_bind_address, "port": a.metrics_port},
                "webhooks": {
                    "bind_address": a.webhook_server_bind_address,
                    "port": a.webhook_server_port,
                    "server_cert_dir": a.webhook_server_tls_server_cert_dir,
                },
            },
            "leader_election": {
                "enabled": a.enable_leader_election,
                "resource_name": a.leader_election_id,
                "resource_lock": a.leader_election_resource_lock,
            },
            "controllers": {
                "disable_lease_cache": a.disable_lease_cache,
                "etcd": {
                    "concurrent_syncs": a.etcd_workers,
                    "enable_etcd_spec_auto_reconcile": a.enable_etcd_spec_auto_reconcile,
                    "disable_etcd_service_account_automount": a.disable_etcd_serviceaccount_automount,
                    "etcd_status_sync_period": a.etcd_status_sync_period,
                    "etcd_member": {
                        "not_ready_threshold": a.etcd_member_notready_threshold,
                        "unknown_threshold": a.etcd_member_unknown_threshold,
                    },
                },
                "compaction": {
                    "enabled": a.enable_backup_compaction,
                    "concurrent_syncs": a.compaction_workers,
                    "events_threshold": a.etcd_events_threshold,
                    "active_deadline_duration": a.active_deadline_duration,
                    "metrics_scrape_wait_duration": a.metrics_scrape_wait_duration,
                },
                "etcd_copy_backups_task": {
                    "enabled": a.enable_etcd_copy_backups_task,
                    "concurrent_syncs": a.etcd_copy_backups_task_workers,
                },
                "etcd_ops_task": {
                    "concurrent_syncs": a.etcd_ops_task_workers,
                    "requeue_interval": a.etcd_ops_task_requeue_interval,
                },
                "secret": {"concurrent_syncs": a.secret_workers},
            },
            "webhooks": {
                "etcd_component_protection": {
                    "enabled": a.enable_etcd_components_webhook,
                    "reconciler_service_account_fqdn": fqdn,
                    "exempt_service_accounts": list(exempt),
                }
            },
            "feature_gates": parse_feature_gates(a.feature_gates),
        }
    )
