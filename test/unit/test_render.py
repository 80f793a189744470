"""`druid render`: the samples render to the builders' objects in sync order; bad input exits 2 with a field path."""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from druid.api import constants as c
from druid.api.etcd import Etcd
from druid.cli.main import main
from druid.components import configmap, registry, statefulset
from druid.components.base import BuildOptions
from druid.config.images import OVERRIDE_ENV
from druid.gocompat import goyaml
from druid.render import PLACEHOLDER_UID, RenderError, default_options, render_objects
from druid.runtime.objects import Obj

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "manifests" / "samples"
SAMPLE_FILES = ("etcd-single.yaml", "etcd-3-tls.yaml", "etcd-3-local-backup.yaml")
TLS_SECRETS = {
    "etcd-3-tls-ca",
    "etcd-3-tls-server",
    "etcd-3-tls-client",
    "etcd-3-tls-peer-ca",
    "etcd-3-tls-peer-server",
}


@pytest.fixture(autouse=True)
def _default_image_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OVERRIDE_ENV, raising=False)


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((SAMPLES / name).read_text())
    assert isinstance(doc, dict)
    return doc


def render(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["render", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def parse_stream(text: str) -> list[Obj]:
    return [doc for doc in yaml.load_all(text, Loader=goyaml.Loader) if doc is not None]


def builders_output(raw: dict[str, Any], opts: BuildOptions, backup_host_path: str | None = None) -> list[Obj]:
    """What the component modules' own ``build`` functions return for ``raw``, called one by one in registry order."""
    raw = copy.deepcopy(raw)
    raw["metadata"].setdefault("uid", PLACEHOLDER_UID)
    etcd = Etcd.model_validate(raw)
    out: list[Obj] = []
    checksum = None
    for kind in registry.sync_kinds(etcd):
        if kind == registry.STATEFUL_SET:
            out += statefulset.build(etcd, opts, configmap_checksum=checksum, backup_host_path=backup_host_path)
        else:
            out += registry.component(kind).builder(etcd, opts)
            if kind == registry.CONFIG_MAP:
                checksum = configmap.checksum(out[-1])
    return out


def expected_order(name: str, replicas: int, *, backup: bool) -> list[tuple[str, str]]:
    role = f"druid.gardener.cloud:etcd:{name}"
    return [
        ("ServiceAccount", name),
        ("Role", role),
        ("RoleBinding", role),
        *(("Lease", f"{name}-{i}") for i in range(replicas)),
        *((("Lease", f"{name}-delta-snap"), ("Lease", f"{name}-full-snap")) if backup else ()),
        ("PodDisruptionBudget", name),
        ("Service", f"{name}-client"),
        ("Service", f"{name}-peer"),
        ("ConfigMap", f"{name}-config"),
        ("StatefulSet", name),
    ]


def kinds_and_names(objects: list[Obj]) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in objects]


def find(objects: list[Obj], kind: str) -> Obj:
    return next(o for o in objects if o["kind"] == kind)


# the samples ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "replicas", "backup"),
    [("etcd-single.yaml", 1, False), ("etcd-3-tls.yaml", 3, False), ("etcd-3-local-backup.yaml", 3, True)],
)
def test_sample_renders_builders_output_in_sync_order(
    capsys: pytest.CaptureFixture[str], sample: str, replicas: int, backup: bool
) -> None:
    raw = load(sample)
    rc, out, err = render(capsys, "-f", str(SAMPLES / sample))
    assert (rc, err) == (0, "")
    objects = parse_stream(out)
    assert kinds_and_names(objects) == expected_order(raw["metadata"]["name"], replicas, backup=backup)
    assert objects == builders_output(raw, default_options())
    assert objects == render_objects(raw)
    for obj in objects:
        assert obj["metadata"]["namespace"] == "default"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == PLACEHOLDER_UID
    sts = find(objects, "StatefulSet")
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations[c.ANNOTATION_CONFIGMAP_CHECKSUM] == configmap.checksum(find(objects, "ConfigMap"))


def test_every_sample_is_covered() -> None:
    etcd_samples = [p.name for p in SAMPLES.glob("*.yaml") if yaml.safe_load(p.read_text()).get("kind") == "Etcd"]
    assert sorted(etcd_samples) == sorted(SAMPLE_FILES)


def test_tls_sample_mounts_the_generated_secrets() -> None:
    sts = find(render_objects(load("etcd-3-tls.yaml")), "StatefulSet")
    secrets = {v["secret"]["secretName"] for v in sts["spec"]["template"]["spec"]["volumes"] if "secret" in v}
    assert secrets == TLS_SECRETS
    config = yaml.safe_load(find(render_objects(load("etcd-3-tls.yaml")), "ConfigMap")["data"]["etcd.conf.yaml"])
    assert config["listen-client-urls"].startswith("https://") and config["listen-peer-urls"].startswith("https://")


def test_local_backup_sample_host_path(capsys: pytest.CaptureFixture[str]) -> None:
    raw = load("etcd-3-local-backup.yaml")
    assert "secretRef" not in raw["spec"]["backup"]["store"]

    def local_volume(objects: list[Obj]) -> dict[str, Any]:
        volumes = find(objects, "StatefulSet")["spec"]["template"]["spec"]["volumes"]
        return next(v for v in volumes if v["name"] == "local-backup")["hostPath"]

    default = local_volume(render_objects(raw))
    assert default == {"path": "/etc/gardener/local-backupbuckets/etcd-3-local-backup", "type": "DirectoryOrCreate"}
    rc, out, _ = render(capsys, "-f", str(SAMPLES / "etcd-3-local-backup.yaml"), "--backup-host-path", "/srv/b")
    assert rc == 0
    assert local_volume(parse_stream(out))["path"] == "/srv/b/etcd-3-local-backup"
    assert parse_stream(out) == builders_output(raw, default_options(), backup_host_path="/srv/b")


def test_sample_secrets_generator() -> None:
    script = ROOT / "hack" / "gen-sample-secrets.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--namespace", "ns1"], capture_output=True, text=True, check=True, timeout=60
    )
    secrets = {s["metadata"]["name"]: s for s in yaml.safe_load_all(proc.stdout)}
    assert set(secrets) == TLS_SECRETS
    assert {s["metadata"]["namespace"] for s in secrets.values()} == {"ns1"}

    def cert(secret: str, key: str = "tls.crt") -> x509.Certificate:
        return x509.load_pem_x509_certificate(base64.b64decode(secrets[secret]["data"][key]))

    for leaf, ca in (
        ("etcd-3-tls-server", "etcd-3-tls-ca"),
        ("etcd-3-tls-client", "etcd-3-tls-ca"),
        ("etcd-3-tls-peer-server", "etcd-3-tls-peer-ca"),
    ):
        cert(leaf).verify_directly_issued_by(cert(ca, "ca.crt"))
        assert secrets[leaf]["type"] == "kubernetes.io/tls" and "tls.key" in secrets[leaf]["data"]

    def sans(secret: str) -> set[str]:
        return set(
            cert(secret)
            .extensions.get_extension_for_class(x509.SubjectAlternativeName)
            .value.get_values_for_type(x509.DNSName)
        )

    assert {"etcd-3-tls-local", "etcd-3-tls-client", "*.etcd-3-tls-peer.ns1.svc"} <= sans("etcd-3-tls-server")
    assert "*.etcd-3-tls-peer.ns1.svc" in sans("etcd-3-tls-peer-server")
    peer_usages = cert("etcd-3-tls-peer-server").extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(peer_usages)


# options and inputs --------------------------------------------------------------------------------------


def test_runtime_component_creation_disabled_renders_configmap_and_statefulset_only() -> None:
    raw = load("etcd-3-tls.yaml")
    raw["metadata"]["annotations"] = {c.ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION: ""}
    objects = render_objects(raw)
    assert kinds_and_names(objects) == [("ConfigMap", "etcd-3-tls-config"), ("StatefulSet", "etcd-3-tls")]
    assert objects[1]["spec"]["replicas"] == 0 and "serviceName" not in objects[1]["spec"]


def test_namespace_and_uid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = load("etcd-single.yaml")
    del raw["metadata"]["namespace"]
    raw["metadata"]["uid"] = "3f0c1d2e-1111-2222-3333-444455556666"
    path = tmp_path / "etcd.yaml"
    path.write_text(yaml.safe_dump(raw))
    rc, out, _ = render(capsys, "-f", str(path), "--namespace", "team-a")
    assert rc == 0
    for obj in parse_stream(out):
        assert obj["metadata"]["namespace"] == "team-a"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == raw["metadata"]["uid"]
    assert "team-a.svc" in find(parse_stream(out), "ConfigMap")["data"]["etcd.conf.yaml"]

    rc, out, err = render(capsys, "-f", str(path))
    assert (rc, out) == (2, "") and "metadata.namespace: required field is missing" in err
    # A namespace in the document wins only when it agrees with --namespace.
    rc, out, _ = render(capsys, "-f", str(SAMPLES / "etcd-single.yaml"), "-n", "default")
    assert rc == 0 and out
    rc, out, err = render(capsys, "-f", str(SAMPLES / "etcd-single.yaml"), "-n", "team-a")
    assert (rc, out) == (2, "") and 'metadata.namespace: "default" does not match' in err


def test_json_stdin_multiple_documents_and_lists(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    single, tls = load("etcd-single.yaml"), load("etcd-3-tls.yaml")
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(single)))
    rc, out, _ = render(capsys, "-f", "-")
    assert rc == 0 and parse_stream(out) == render_objects(single)

    stream = SAMPLES / "etcd-single.yaml"
    monkeypatch.setattr(sys, "stdin", io.StringIO(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [tls]})))
    rc, out, _ = render(capsys, "-f", str(stream), "-f", "-")
    assert rc == 0 and parse_stream(out) == render_objects(single) + render_objects(tls)


def test_operator_options(capsys: pytest.CaptureFixture[str]) -> None:
    sample = str(SAMPLES / "etcd-single.yaml")
    rc, out, _ = render(
        capsys, "-f", sample, "--feature-gates", "UpgradeEtcdVersion=true", "--disable-etcd-serviceaccount-automount"
    )
    assert rc == 0
    objects = parse_stream(out)
    assert find(objects, "ServiceAccount")["automountServiceAccountToken"] is False
    assert "backend-bbolt-freelist-type: array" in find(objects, "ConfigMap")["data"]["etcd.conf.yaml"]
    images = [ctr["image"] for ctr in find(objects, "StatefulSet")["spec"]["template"]["spec"]["containers"]]
    assert (
        images[0]
        != find(render_objects(load("etcd-single.yaml")), "StatefulSet")["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
    )


def test_operator_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "apiVersion: config.druid.gardener.cloud/v1alpha1\nkind: OperatorConfiguration\n"
        "controllers:\n  etcd:\n    disableEtcdServiceAccountAutomount: true\n"
        "featureGates:\n  UpgradeEtcdVersion: true\n"
    )
    rc, out, err = render(capsys, "-f", str(SAMPLES / "etcd-single.yaml"), "--config", str(config))
    assert rc == 0, err
    objects = parse_stream(out)
    assert find(objects, "ServiceAccount")["automountServiceAccountToken"] is False
    assert "backend-bbolt-freelist-type" in find(objects, "ConfigMap")["data"]["etcd.conf.yaml"]


# bad input -----------------------------------------------------------------------------------------------

GOOD = (SAMPLES / "etcd-3-tls.yaml").read_text()
BAD_INPUTS = {
    "unknown field": (GOOD.replace("  etcd:\n", "  etcd:\n    foo: 1\n"), "spec.etcd.foo: unknown field"),
    "misspelt field": (
        GOOD.replace("peerUrlTls:", "peerURLTls:"),
        'spec.etcd.peerURLTls: unknown field (did you mean "peerUrlTls"?)',
    ),
    "invalid enum": (
        GOOD.replace("  etcd:\n", "  etcd:\n    metrics: huge\n"),
        'spec.etcd.metrics: invalid value "huge"',
    ),
    "wrong type": (GOOD.replace("replicas: 3", 'replicas: "3"'), 'spec.replicas: invalid value "3"'),
    "invalid pattern": (
        GOOD.replace("  backup: {}", "  backup:\n    deltaSnapshotPeriod: soon"),
        'spec.backup.deltaSnapshotPeriod: invalid value "soon"',
    ),
    "missing required": (
        GOOD.replace("      serverTLSSecretRef:\n        name: etcd-3-tls-peer-server\n", ""),
        "spec.etcd.peerUrlTls.serverTLSSecretRef: required field is missing",
    ),
    "wrong kind": (
        GOOD.replace("kind: Etcd", "kind: EtcdCopyBackupsTask"),
        'kind: must be Etcd, got "EtcdCopyBackupsTask"',
    ),
    "wrong apiVersion": (
        GOOD.replace("druid.gardener.cloud/v1alpha1", "druid.gardener.cloud/v1beta1"),
        'apiVersion: must be druid.gardener.cloud/v1alpha1, got "druid.gardener.cloud/v1beta1"',
    ),
    "missing name": (GOOD.replace("  name: etcd-3-tls\n", ""), "metadata.name: required field is missing"),
    "invalid YAML": (GOOD.replace("  replicas: 3", "  replicas: [3"), "invalid YAML at line"),
    "not an object": ("- 1\n- 2\n", "expected an Etcd object (a mapping), got a list"),
    "empty": ("", "no Etcd documents found"),
    "one bad among good": (
        f"{GOOD}---\n{GOOD.replace('replicas: 3', 'replicas: many')}",
        '(document 2, Etcd etcd-3-tls): spec.replicas: invalid value "many"',
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_field_path(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    text, message = BAD_INPUTS[case]
    path = tmp_path / "etcd.yaml"
    path.write_text(text)
    rc, out, err = render(capsys, "-f", str(path))
    assert (rc, out) == (2, "")
    assert f"druid render: {path}" in err and message in err, err


def test_render_objects_reports_every_problem_with_its_path() -> None:
    raw = load("etcd-3-tls.yaml")
    del raw["metadata"]["name"]
    raw["metadata"]["labels"] = {"app.kubernetes.io/x": 1}
    raw["spec"]["etcd"]["foo"] = 1
    with pytest.raises(RenderError) as info:
        render_objects(raw)
    assert info.value.problems == [
        "metadata.name: required field is missing",
        'metadata.labels["app.kubernetes.io/x"]: invalid value 1: input should be a valid string',
        "spec.etcd.foo: unknown field",
    ]


def test_bad_flags_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    sample = str(SAMPLES / "etcd-single.yaml")
    for gates, message in (
        ("Nope=true", "unknown feature Nope"),
        ("UpgradeEtcdVersion=maybe", "invalid value 'UpgradeEtcdVersion=maybe'"),
        ("UseEtcdWrapper=false", "feature UseEtcdWrapper is locked to default value true"),
    ):
        rc, out, err = render(capsys, "-f", sample, "--feature-gates", gates)
        assert (rc, out) == (2, "") and message in err
    rc, out, err = render(capsys, "-f", str(SAMPLES / "missing.yaml"))
    assert (rc, out) == (2, "") and "cannot read" in err


def test_bad_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "apiVersion: config.druid.gardener.cloud/v1alpha1\nkind: OperatorConfiguration\n"
        "controllers:\n  etcd:\n    disableAutomount: true\n"
    )
    rc, out, err = render(capsys, "-f", str(SAMPLES / "etcd-single.yaml"), "--config", str(config))
    assert (rc, out) == (2, "")
    assert f"druid render: --config {config}: controllers.etcd.disableAutomount" in err


def test_real_process() -> None:
    cmd = [sys.executable, "-m", "druid.cli.main", "render"]
    env = {k: v for k, v in os.environ.items() if k != OVERRIDE_ENV}
    ok = subprocess.run(
        [*cmd, "-f", str(SAMPLES / "etcd-3-tls.yaml")], capture_output=True, text=True, env=env, timeout=60
    )
    assert (ok.returncode, ok.stderr) == (0, "")
    assert parse_stream(ok.stdout) == render_objects(load("etcd-3-tls.yaml"))
    text, message = BAD_INPUTS["unknown field"]
    bad = subprocess.run([*cmd, "-f", "-"], input=text, capture_output=True, text=True, env=env, timeout=60)
    assert (bad.returncode, bad.stdout) == (2, "")
    assert f"druid render: <stdin>: {message}" in bad.stderr
