"""Run the Pulumi program under Pulumi's mock runtime and write what it declared as manifests.

The Pulumi CLI and a cluster are not needed: `pulumi.runtime.set_mocks` replaces the
engine with an in-process monitor that records each resource's inputs (the full
Kubernetes object, camelCase) and dependencies. `render_manifests` returns them in a
stable order; `write_manifests` writes one YAML file per resource
(`NN-kind-name.yaml`), and `validate_manifests` checks each against the Kubernetes
OpenAPI schemas with `kubernetes-validate --strict`.

Numbers pass through protobuf `Struct` as floats (`replicas: 1.0`); integral floats
are turned back into ints. Each manifest gets an Argo CD sync wave computed from the
recorded dependencies, so a GitOps tool applies them in the order `pulumi up` would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import yaml
from pulumi.runtime import mocks

from schemas import BackendError, MissingDependencyError

from ._config import CONFIG_NAMESPACE, KubernetesConfig
from ._program import deploy

if TYPE_CHECKING:
    from ..._resolve import Graph

__all__ = [
    "KUBERNETES_VERSION",
    "KIND_ORDER",
    "RenderedResource",
    "Rendering",
    "render_manifests",
    "validate_manifests",
    "write_manifests",
]

KUBERNETES_VERSION = "1.33.0"
"""The oldest Kubernetes the manifests are checked against (`backoffLimitPerIndex` is GA)."""
KIND_ORDER = (
    "Namespace",
    "ServiceAccount",
    "PersistentVolumeClaim",
    "ConfigMap",
    "NetworkPolicy",
    "Deployment",
    "Service",
    "Job",
)
"""Within a sync wave, the order a cluster wants: namespaces first, workloads last."""
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
_FILE_PATTERN = re.compile(r"^\d{2,}-[a-z]+-[a-z0-9.-]+\.yaml$")


@dataclass(frozen=True)
class RenderedResource:
    """One Kubernetes object the program declared."""

    type: str
    """Pulumi type token (`kubernetes:batch/v1:Job`)."""
    urn: str
    manifest: dict[str, Any]
    dependencies: tuple[str, ...]
    """URNs of the resources it waits for (`depends_on` and inputs)."""
    wave: int = 0

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    @property
    def file_stem(self) -> str:
        return f"{self.kind.lower()}-{self.name}"


@dataclass(frozen=True)
class Rendering:
    """Everything the program declared, in apply order, and its stack outputs."""

    resources: list[RenderedResource]
    outputs: dict[str, Any] = field(default_factory=dict)

    def by_urn(self) -> dict[str, RenderedResource]:
        """Resources keyed by URN."""
        return {r.urn: r for r in self.resources}

    def find(self, kind: str, name: str) -> RenderedResource:
        """The resource of this kind and name (KeyError if absent)."""
        for resource in self.resources:
            if resource.kind == kind and resource.name == name:
                return resource
        raise KeyError(f"{kind}/{name}")

    def waits_for(self, resource: RenderedResource) -> set[str]:
        """`Kind/name` of every resource `resource` waits for, directly or not."""
        index = self.by_urn()
        seen: set[str] = set()
        todo = list(resource.dependencies)
        while todo:
            urn = todo.pop()
            if urn in seen or urn not in index:
                continue
            seen.add(urn)
            todo.extend(index[urn].dependencies)
        return {f"{index[u].kind}/{index[u].name}" for u in seen}

    def files(self) -> dict[str, str]:
        """File name → YAML text, numbered in apply order."""
        width = max(2, len(str(len(self.resources))))
        return {
            f"{i:0{width}d}-{r.file_stem}.yaml": _dump(r.manifest)
            for i, r in enumerate(self.resources, start=1)
        }


class _RecordingMocks(mocks.Mocks):
    """Echo every resource's inputs back as its outputs (a `pulumi up` that changes nothing)."""

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class _RecordingMonitor(mocks.MockMonitor):
    """Pulumi's mock monitor, also keeping each registration's dependencies."""

    def __init__(self, recorder: _RecordingMocks) -> None:
        super().__init__(recorder)
        self.dependencies: dict[str, tuple[str, ...]] = {}
        self.order: list[str] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method's name)
        response = super().RegisterResource(request)
        self.dependencies[response.urn] = tuple(request.dependencies)
        self.order.append(response.urn)
        return response


def render_manifests(
    graph: Graph,
    config: KubernetesConfig,
    *,
    stack: str = "dev",
    program: Callable[[Graph, KubernetesConfig], dict[str, Any]] = deploy,
) -> Rendering:
    """Run the Kubernetes program under Pulumi's mock runtime and collect what it declared.

    Args:
        graph: the resolved (and possibly selected) graph.
        config: the stack configuration.
        stack: the stack name (it only appears in URNs).
        program: the program to run; `deploy` unless a test swaps it.

    Raises:
        BackendError: the program failed (duplicate names, invalid specs for the cluster).
    """
    monitor = _RecordingMonitor(_RecordingMocks())
    mocks.set_mocks(
        monitor.mocks, project=CONFIG_NAMESPACE, stack=stack, preview=False, monitor=monitor
    )
    outputs: dict[str, Any] = {}

    def run() -> Any:
        exported = program(graph, config)
        return pulumi.Output.from_input(exported).apply(outputs.update)

    try:
        mocks.test(run)()
    except BackendError:
        raise
    except Exception as exc:
        cause = _unwrap(exc)
        if isinstance(cause, BackendError):
            raise cause from None
        if isinstance(cause, pulumi.RunError):  # the program's own user-facing error
            raise BackendError(str(cause)) from None
        raise BackendError(
            f"the Kubernetes program failed under the mock runtime: {cause}"
        ) from exc
    return Rendering(_ordered(monitor), outputs)


def _unwrap(exc: BaseException) -> BaseException:
    """Pulumi re-raises a program's error wrapped; find the one the program raised."""
    seen: BaseException | None = exc
    last = exc
    while seen is not None:
        if isinstance(seen, BackendError | pulumi.RunError):
            return seen
        last = seen
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return last


def _ordered(monitor: _RecordingMonitor) -> list[RenderedResource]:
    registered = monitor.get_registered_resources()
    found: dict[str, RenderedResource] = {}
    for urn in monitor.order:
        type_token = urn.split("::")[2].split("$")[-1]
        if not type_token.startswith("kubernetes:"):
            continue  # the provider and the stack are Pulumi's own
        manifest = _clean(registered[urn].state)
        found[urn] = RenderedResource(type_token, urn, manifest, monitor.dependencies[urn])
    waves = _waves(found)
    ranked = [
        RenderedResource(
            r.type, r.urn, _with_wave(r.manifest, waves[r.urn]), r.dependencies, waves[r.urn]
        )
        for r in found.values()
    ]
    return sorted(ranked, key=_sort_key)


def _waves(found: dict[str, RenderedResource]) -> dict[str, int]:
    """Longest dependency chain below each resource: the Argo CD sync wave."""
    waves: dict[str, int] = {}

    def wave(urn: str) -> int:
        if urn not in waves:
            deps = [d for d in found[urn].dependencies if d in found]
            waves[urn] = 1 + max((wave(d) for d in deps), default=-1)
        return waves[urn]

    for urn in found:
        wave(urn)
    return waves


def _sort_key(resource: RenderedResource) -> tuple[int, int, str, str]:
    kind = KIND_ORDER.index(resource.kind) if resource.kind in KIND_ORDER else len(KIND_ORDER)
    labels = resource.manifest["metadata"].get("labels") or {}
    # Ordering by the node's name (not the resource name, which carries the id) keeps
    # every other file's number when one node's id changes.
    return resource.wave, kind, labels.get("auditc.io/name", ""), resource.name


def _with_wave(manifest: dict[str, Any], wave: int) -> dict[str, Any]:
    metadata = dict(manifest["metadata"])
    metadata["annotations"] = {**(metadata.get("annotations") or {}), SYNC_WAVE: str(wave)}
    return {**manifest, "metadata": metadata}


def _clean(value: Any) -> Any:
    """Integral floats back to ints, Pulumi-internal keys dropped, keys in a stable order."""
    if isinstance(value, dict):
        return {
            k: _clean(v)
            for k, v in sorted(value.items(), key=lambda kv: _key_rank(kv[0]))
            if not k.startswith("__") and v is not None
        }
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _key_rank(key: str) -> tuple[int, str]:
    first = ("apiVersion", "kind", "metadata", "immutable", "spec", "data")
    return (first.index(key), "") if key in first else (len(first), key)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the JSON files of ConfigMaps) as literal blocks, readable in review."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(manifest: dict[str, Any]) -> str:
    return yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def write_manifests(rendering: Rendering, out: Path) -> list[Path]:
    """Write one YAML file per resource into `out`, replacing earlier rendered files.

    Only files named like ours (`NN-kind-name.yaml`) are removed, so a README or a
    kustomization in the same directory survives.

    Raises:
        BackendError: `out` exists and is not a directory.
    """
    if out.exists() and not out.is_dir():
        raise BackendError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file() and _FILE_PATTERN.match(old.name):
            old.unlink()
    written = []
    for name, text in rendering.files().items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def validate_manifests(rendering: Rendering, version: str = KUBERNETES_VERSION) -> None:
    """Check every manifest against the Kubernetes OpenAPI schemas, unknown fields included.

    Raises:
        BackendError: a manifest does not validate (every problem is listed).
        MissingDependencyError: kubernetes-validate is not installed.
    """
    try:
        import kubernetes_validate
    except ImportError as exc:
        raise MissingDependencyError(
            "validating manifests needs kubernetes-validate: pip install 'auditc[kubernetes]'"
        ) from exc
    problems = []
    for name, resource in zip(rendering.files(), rendering.resources, strict=True):
        try:
            kubernetes_validate.validate(resource.manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path) or "(root)"
            problems.append(f"{name}: {where}: {exc.message}")
    if problems:
        raise BackendError(
            f"{len(problems)} manifest(s) do not validate against Kubernetes {version}:\n"
            + "\n".join(problems)
        )
