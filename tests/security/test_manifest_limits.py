"""Manifests the Kubernetes API server would refuse are not called valid (issue 10, defect 6).

The attack: a Method's parameters copied into its ConfigMap twice made 1.8–4.0 MB
ConfigMaps (the API server refuses more than 1 MiB), and an accelerator product that is
no label value went into a nodeSelector; `compile` said "valid for Kubernetes 1.33.0".
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from security_helpers import DATASET, REPO, assert_usage_error, auditc, write_project

from compiler.backends.kubernetes._limits import limit_problems

BIG_METHOD = """\
---
kind: Module
name: metrics
spec: {path: metrics}
---
kind: Method
name: big-parameters
spec:
  implementation: {python: "metrics:mean"}
  modules: [metrics]
  inputs: {rows: rows}
  parameters: {lexicon: "%s"}
  output: {kind: Measurement}
"""


def test_a_configmap_over_one_mebibyte_is_refused_at_its_resource(tmp_path: Path) -> None:
    specs = DATASET + BIG_METHOD % ("w" * 600_000)
    project = write_project(tmp_path / "p", specs, {"metrics/metrics.py": "def mean(rows): ..."})
    result = auditc(
        "-C", str(project), "compile", "--store", "s3://b/audits", "--out", str(tmp_path / "o")
    )
    assert_usage_error(
        result,
        "audits/a.yaml:11:1: Method/big-parameters: ConfigMap big-parameters-",
        ": data: the ConfigMap holds 1,2",
        "bytes of data; the API server refuses more than 1,048,576; the node's resolved spec "
        "is copied into it",
        "[kubernetes-limit]",
    )
    assert not (tmp_path / "o").exists(), "nothing is written when a manifest is refused"


def test_an_accelerator_product_must_be_a_label_value() -> None:
    fixture = REPO / "tests" / "fixtures" / "invalid" / "image-reference"
    result = auditc("-C", str(fixture), "validate")
    assert_usage_error(result, "spec.resources.accelerator.product: 'H100 80GB; rm -rf' is not")


POD = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "eval-0123456789", "labels": {"auditc.io/name": "eval"}},
    "spec": {
        "completionMode": "Indexed",
        "completions": 2,
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {
                "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100"},
                "containers": [
                    {
                        "name": "client",
                        "image": "x",
                        "env": [{"name": "A", "value": "1"}],
                        "ports": [{"name": "http", "containerPort": 80}],
                    }
                ],
                "volumes": [{"name": "config", "emptyDir": {}}],
            },
        },
    },
}


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(POD)
    target: Any = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return manifest


def test_a_valid_pod_owner_breaks_no_rule() -> None:
    assert limit_problems(POD) == []


@pytest.mark.parametrize(
    ("path", "value", "where", "says"),
    [
        (("metadata", "name"), "Eval", "metadata.name", "not a DNS-1123 label"),
        (("metadata", "name"), "e" * 62, "metadata.name", "hostname <name>-<index>"),
        (("metadata", "labels", "team"), "A B", "metadata.labels.team", "not a label value"),
        (("metadata", "labels", "bad key!"), "x", "metadata.labels.bad key!", "qualified name"),
        (
            ("spec", "template", "spec", "nodeSelector", "nvidia.com/gpu.product"),
            "H100 80GB",
            "spec.template.spec.nodeSelector.nvidia.com/gpu.product",
            "not a label value",
        ),
        (("metadata", "annotations"), {"a": "x" * 300_000}, "metadata.annotations", "262,144"),
        (
            ("spec", "template", "spec", "containers", 0, "ports", 0, "name"),
            "a-very-long-port-name",
            "spec.template.spec.containers.0.ports.0.name",
            "IANA service name",
        ),
        (
            ("spec", "template", "spec", "containers", 0, "env", 0, "name"),
            "A=B",
            "spec.template.spec.containers.0.env.0.name",
            "environment variable name",
        ),
        (
            ("spec", "template", "spec", "volumes", 0, "name"),
            "Config",
            "spec.template.spec.volumes.0.name",
            "a volume name",
        ),
    ],
)
def test_each_rule(path: tuple[Any, ...], value: Any, where: str, says: str) -> None:
    problems = limit_problems(_with(path, value))
    assert [p.path for p in problems] == [where]
    assert says in problems[0].message


def test_configmap_size_keys_and_whole_object_size() -> None:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"ok.json": "x" * 1_048_576, "bad key": "y"},
    }
    paths = [p.path for p in limit_problems(config_map)]
    assert paths == ["data.bad key", "data"]
    huge = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "9-starts-with-digit"}}
    huge["spec"] = {"x": "z" * 1_600_000}
    assert [p.path for p in limit_problems(huge)] == ["(root)", "metadata.name"]
