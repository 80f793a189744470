"""druid.api.problems: one "path: problem" formatter for the Etcd, the operator configuration and render."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from druid.api import problems
from druid.api.etcd import Etcd
from druid.config import ConfigError, parse
from druid.controllers.etcd.reconciler import invalid_spec_error


def etcd_error(raw: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        Etcd.model_validate(raw)
    return info.value


def test_field_path() -> None:
    assert problems.field_path([]) == ""
    assert problems.field_path(["spec", "etcd", "clientUrlTls"]) == "spec.etcd.clientUrlTls"
    assert problems.field_path(["exempt", 1, "name"]) == "exempt[1].name"
    assert problems.field_path(["labels", "app.kubernetes.io/name"]) == 'labels["app.kubernetes.io/name"]'


def test_etcd_and_configuration_errors_read_alike() -> None:
    raw = {"metadata": {"name": "e"}, "spec": {"replicas": "x", "labels": {}, "etcd": {}, "bogus": 1}}
    found = dict(problems.lines(etcd_error(raw)))
    assert found["spec.bogus"] == "unknown field"
    assert found["spec.replicas"].startswith("Input should be a valid integer")
    assert "spec.replicas: Input should be a valid integer" in invalid_spec_error(etcd_error(raw)).message
    with pytest.raises(ConfigError) as info:
        parse({"apiVersion": "config.druid.gardener.cloud/v1alpha1", "kind": "OperatorConfiguration", "bogus": 1})
    assert [str(e) for e in info.value.errors] == ["bogus: unknown field"]


def test_missing_fields_are_required_and_the_root_is_named() -> None:
    found = problems.lines(etcd_error({"metadata": {"name": "e"}, "spec": {"labels": {}}}))
    assert ("spec.etcd", "required") in found
    with pytest.raises(ValidationError) as info:
        Etcd.model_validate([])
    assert problems.lines(info.value)[0][0] == problems.ROOT
