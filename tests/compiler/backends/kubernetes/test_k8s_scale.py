"""What keeps `auditc compile --target kubernetes` fast keeps its results the same.

Strict validation with a validator per kind still rejects what `kubernetes-validate
--strict` rejects; dependencies are only the direct ones (the rest is implied), with the
same transitive waits and sync waves; the fast reading of registrations and the paused
collector change nothing in the manifests or the stack outputs.
"""

from __future__ import annotations

import copy
import gc
from typing import Any

import kubernetes_validate
import pytest
from google.protobuf import struct_pb2
from pulumi.runtime import rpc

from compiler import Graph
from compiler.backends.kubernetes import (
    KubernetesConfig,
    RenderedResource,
    Rendering,
    render_manifests,
    validate_manifests,
)
from compiler.backends.kubernetes._pod_files import in_graph_order
from compiler.backends.kubernetes._render import _plain_properties
from schemas import BackendError


def _with(rendering: Rendering, kind: str, change: Any) -> Rendering:
    """The rendering with the first manifest of `kind` changed in place of a copy."""
    resources = list(rendering.resources)
    index = next(i for i, r in enumerate(resources) if r.kind == kind)
    old = resources[index]
    manifest = copy.deepcopy(old.manifest)
    change(manifest)
    resources[index] = RenderedResource(old.type, old.urn, manifest, old.dependencies, old.wave)
    return Rendering(resources, rendering.outputs)


def test_rendering_validates(rendering: Rendering) -> None:
    validate_manifests(rendering)


@pytest.mark.parametrize(
    ("kind", "change", "where"),
    [
        # An unknown field: strict schemas forbid additional properties everywhere.
        ("Job", lambda m: m["spec"]["template"]["spec"].update(bogus=1), "spec.template.spec"),
        ("ConfigMap", lambda m: m.update(extra="x"), "(root)"),
        ("Deployment", lambda m: m["spec"].update(replicas="two"), "spec.replicas"),
        ("Service", lambda m: m["spec"]["ports"][0].pop("port"), "spec.ports.0"),
    ],
)
def test_a_bad_manifest_is_rejected_like_kubernetes_validate_strict(
    rendering: Rendering, kind: str, change: Any, where: str
) -> None:
    bad = _with(rendering, kind, change)
    manifest = next(r for r in bad.resources if r.kind == kind).manifest
    with pytest.raises(kubernetes_validate.ValidationError) as reference:
        kubernetes_validate.validate(manifest, "1.33.0", strict=True)
    with pytest.raises(BackendError) as info:
        validate_manifests(bad)
    message = str(info.value)
    assert message.startswith("1 manifest(s) do not validate against Kubernetes 1.33.0")
    assert f"-{kind.lower()}-" in message
    assert f": {where}: {reference.value.message}" in message


def test_an_unknown_kind_is_a_problem_not_a_crash(rendering: Rendering) -> None:
    bad = _with(rendering, "ConfigMap", lambda m: m.update(kind="Gadget"))
    with pytest.raises(BackendError, match="Couldn't find schema for kind Gadget"):
        validate_manifests(bad)


def _reachable(by_urn: dict[str, RenderedResource], start: tuple[str, ...]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        urn = todo.pop()
        if urn in by_urn and urn not in seen:
            seen.add(urn)
            todo.extend(by_urn[urn].dependencies)
    return seen


def test_each_resource_lists_only_direct_dependencies(rendering: Rendering) -> None:
    by_urn = rendering.by_urn()
    for resource in rendering.resources:
        for dependency in resource.dependencies:
            others = tuple(d for d in resource.dependencies if d != dependency)
            assert dependency not in _reachable(by_urn, others), (
                f"{resource.kind}/{resource.name} lists {dependency}, implied by another"
            )


def test_waves_are_the_longest_dependency_chain(rendering: Rendering) -> None:
    by_urn = rendering.by_urn()
    for resource in rendering.resources:
        deps = [by_urn[d] for d in resource.dependencies if d in by_urn]
        assert resource.wave == 1 + max((d.wave for d in deps), default=-1)
        annotations = resource.manifest["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/sync-wave"] == str(resource.wave)


def test_everything_waits_for_the_shared_resources(rendering: Rendering) -> None:
    for resource in rendering.resources:
        if resource.kind != "Namespace":
            assert "Namespace/auditc" in rendering.waits_for(resource)
        shared = resource.kind in ("Namespace", "ServiceAccount") or (
            resource.name.startswith(("auditc-jobs-", "auditc-external-"))
        )
        if not shared:
            assert "ServiceAccount/auditc-runner" in rendering.waits_for(resource)
            # No Job pod starts before the policy that confines it exists.
            assert "NetworkPolicy/auditc-jobs-default-deny" in rendering.waits_for(resource)


def test_plain_properties_match_pulumi() -> None:
    value = {
        "apiVersion": "batch/v1",
        "spec": {"completions": 3.0, "flag": True, "none": None, "list": [1.5, "a", {"b": []}]},
        "empty": {},
    }
    struct = struct_pb2.Struct()
    struct.update(value)
    assert _plain_properties(struct) == rpc.deserialize_properties(struct)
    secret = struct_pb2.Struct()
    secret.update({"data": {rpc._special_sig_key: rpc._special_secret_sig, "value": "s"}})
    assert _plain_properties(secret) == rpc.deserialize_properties(secret)


def test_rendering_restores_the_collector(graph: Graph, config: KubernetesConfig) -> None:
    assert gc.isenabled()
    render_manifests(graph, config).files()
    assert gc.isenabled()
    gc.disable()
    try:
        render_manifests(graph, config)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_rendering_twice_gives_the_same_files(
    graph: Graph, config: KubernetesConfig, rendering: Rendering
) -> None:
    again = render_manifests(graph, config)
    assert again.files() == rendering.files()
    assert again.outputs == rendering.outputs


def test_in_graph_order(graph: Graph) -> None:
    names = [n.name for n in graph]
    assert [n.name for n in in_graph_order(graph, reversed(names))] == names
    assert [n.name for n in in_graph_order(graph, {names[2], names[0]})] == [names[0], names[2]]


def test_validation_reports_every_problem_in_file_order(rendering: Rendering) -> None:
    validate_manifests(rendering)
    resources = list(rendering.resources)
    first, last = 1, len(resources) - 1  # one in each half
    for index in (first, last):
        old = resources[index]
        manifest = copy.deepcopy(old.manifest)
        manifest["metadata"]["bogus"] = True
        resources[index] = RenderedResource(old.type, old.urn, manifest, old.dependencies)
    with pytest.raises(BackendError) as info:
        validate_manifests(Rendering(resources, rendering.outputs))
    lines = str(info.value).splitlines()
    assert lines[0].startswith("2 manifest(s) do not validate")
    assert [line.split("-")[0] for line in lines[1:]] == [f"{first + 1:02d}", f"{last + 1:02d}"]
    assert all("metadata: Additional properties are not allowed" in line for line in lines[1:])
