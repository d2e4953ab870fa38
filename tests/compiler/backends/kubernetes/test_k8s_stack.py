"""Stack settings: Pulumi.yaml, the example stack, the program file, errors, volumes, names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from k8s_helpers import FIXTURE, REPO, STACK, containers, copy_project, pod_templates

from compiler import Graph
from compiler.backends.kubernetes import (
    KubernetesConfig,
    load_stack_config,
    render_manifests,
    validate_manifests,
)
from compiler.backends.kubernetes._names import dns_label, object_name, service_name
from compiler.cli.main import main
from schemas import BackendError, SpecValidationError


def test_pulumi_project_points_at_the_program() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert project["name"] == "auditc"
    assert project["runtime"]["name"] == "python"
    assert (REPO / project["main"]).is_file()
    assert (REPO / project["stackConfigDir"] / "Pulumi.dev.yaml").is_file()


def test_example_stack_compiles_to_valid_manifests(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    (project / "stacks").mkdir()
    example = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()
    assert "requireDigests: true" in example
    # The test audit's container service is named by tag, which the example refuses.
    (project / "stacks" / "Pulumi.dev.yaml").write_text(
        example.replace("requireDigests: true", "requireDigests: false")
    )
    out = tmp_path / "out"
    main(["-C", str(project), "compile", "--stack", "dev", "--out", str(out)])
    names = [p.name for p in sorted(out.glob("*.yaml"))]
    assert names[:3] == [
        "01-namespace-auditc-dev.yaml",
        "02-serviceaccount-auditc-runner.yaml",
        "03-persistentvolumeclaim-auditc-model-cache.yaml",
    ]
    claim = yaml.safe_load((out / names[2]).read_text())
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "200Gi"}},
        "storageClassName": "standard-rwx",
    }


def _fail(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_bad_stack_settings_are_reported_with_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_project(tmp_path / "project")
    (project / "stacks").mkdir()
    (project / "stacks" / "Pulumi.bad.yaml").write_text(
        "config:\n"
        "  kubernetes:namespace: ignored\n"
        "  auditc:namespce: audits\n"
        "  auditc:store: {uri: 's3://b/p', pvc: {claimName: x}}\n"
    )
    err = _fail(
        ["-C", str(project), "compile", "--stack", "bad", "--out", str(tmp_path / "o")], capsys
    )
    stack = project / "stacks" / "Pulumi.bad.yaml"
    assert f"{stack}: auditc:namespce: unknown key" in err
    assert (
        f"{stack}: auditc:store: Value error, set exactly one of 'uri' (object storage) "
        "and 'pvc' (a volume) [stack-config]" in err
    )
    assert "2 errors in 1 file" in err
    assert not (tmp_path / "o").exists()


def test_a_store_is_required(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _fail(["-C", str(FIXTURE), "compile", "--out", str(tmp_path / "o")], capsys)
    assert "--target kubernetes needs a store" in err
    err = _fail(["-C", str(FIXTURE), "compile", "--stack", "nope", "--out", str(tmp_path)], capsys)
    assert "Pulumi.nope.yaml does not exist" in err


def test_missing_required_key_names_it() -> None:
    with pytest.raises(SpecValidationError) as info:
        KubernetesConfig.from_mapping({"namespace": "a"}, "stack dev")
    assert str(info.value).startswith("stack dev: auditc:store: is required [stack-config]")


def test_store_on_a_volume(graph: Graph) -> None:
    config = KubernetesConfig.model_validate(
        {
            "store": {"pvc": {"claimName": "audit-store", "size": "50Gi"}, "mountPath": "/data"},
            "createNamespace": False,
            "namespace": "team-a",
            "storageClass": "nfs",
        }
    )
    rendering = render_manifests(graph, config)
    validate_manifests(rendering)
    assert not [r for r in rendering.resources if r.kind == "Namespace"]
    assert {r.manifest["metadata"]["namespace"] for r in rendering.resources} == {"team-a"}
    claim = rendering.find("PersistentVolumeClaim", "audit-store").manifest
    assert claim["spec"]["storageClassName"] == "nfs"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    node = graph["phrases-length"]
    assert (
        rendering.outputs["nodes"][node.key]["uri"] == f"/data/evaluation/phrases-length/{node.id}"
    )
    for key, template in pod_templates(rendering):
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        assert volumes["store"]["persistentVolumeClaim"] == {"claimName": "audit-store"}, key
        for container in containers(template):
            assert "envFrom" not in container
            if container["name"] in ("fetch", "client", "commit", "method", "ingest"):
                assert {"mountPath": "/data", "name": "store"} in container["volumeMounts"], key


def test_names_stay_valid_and_distinct_when_cut() -> None:
    long_a = "a" * 50 + "-x"
    long_b = "a" * 50 + "-y"
    node_id = "0123456789abcdef0123"
    a = object_name(long_a, node_id, "commit")
    b = object_name(long_b, node_id, "commit")
    assert len(a) <= 63 and len(b) <= 63 and a != b
    assert a.endswith("-0123456789-commit")
    assert object_name("eval", node_id) == "eval-0123456789"
    assert dns_label("x", "y") == "x-y"
    assert service_name("7up-0123456789") == "s-7up-0123456789"
    assert service_name("eval-0123456789") == "eval-0123456789"


def _set_config(values: dict[str, Any]) -> None:
    pulumi.runtime.set_all_config(
        {f"auditc:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    )


def test_the_pulumi_program_file_declares_the_same_resources(
    graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pulumi up` runs pulumi_main.py; under mocks it declares what `compile` writes."""
    program = REPO / yaml.safe_load((REPO / "Pulumi.yaml").read_text())["main"]
    monkeypatch.chdir(FIXTURE)  # the engine runs programs in the project directory
    _set_config({**STACK, "namespace": "audits", "createNamespace": False})
    try:
        via_program = render_manifests(
            graph, KubernetesConfig.model_validate(STACK), program=lambda g, c: _run(program)
        )
    finally:
        pulumi.runtime.set_all_config({})
    config = KubernetesConfig.model_validate(
        {**STACK, "namespace": "audits", "createNamespace": False}
    )
    direct = render_manifests(graph, config)
    assert via_program.files() == direct.files()


def _run(program: Path) -> dict[str, Any]:
    import runpy

    runpy.run_path(str(program), run_name="__main__")
    return {}


def test_the_program_reports_bad_settings_without_a_traceback(
    graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = REPO / "compiler" / "backends" / "kubernetes" / "pulumi_main.py"
    monkeypatch.chdir(FIXTURE)
    _set_config({"namespace": "Not_Valid"})
    try:
        with pytest.raises(BackendError) as info:
            render_manifests(
                graph, KubernetesConfig.model_validate(STACK), program=lambda g, c: _run(program)
            )
    finally:
        pulumi.runtime.set_all_config({})
    message = str(info.value)
    assert "auditc:namespace: String should match pattern" in message
    assert "auditc:store: is required" in message


def test_load_stack_config_applies_overrides(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text("config:\n  auditc:store: {uri: 's3://a/b'}\n  auditc:namespace: one\n")
    config = load_stack_config(stack, {"namespace": "two"})
    assert config.namespace == "two" and config.store.uri == "s3://a/b"
