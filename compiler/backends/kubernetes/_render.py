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

import asyncio
import atexit
import concurrent.futures
import contextlib
import gc
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc
from pulumi.runtime.proto import resource_pb2

from schemas import BackendError, MissingDependencyError

from ..._written import write_generated_files
from ._limits import check_limits
from ._program import deploy
from ._stack_config import CONFIG_NAMESPACE, KubernetesConfig

if TYPE_CHECKING:
    from ..._resolve import Graph

__all__ = [
    "KUBERNETES_VERSION",
    "KIND_ORDER",
    "RenderedResource",
    "Rendering",
    "ResourceOptionsSeen",
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


@dataclass(frozen=True)
class ResourceOptionsSeen:
    """What the engine was told about a resource besides its inputs."""

    parent: str = ""
    """The URN of its component (an audit node), or "" at the stack's root."""
    aliases: tuple[str, ...] = ()
    """Earlier identities (`no parent` for a resource that moved into a component)."""
    ignore_changes: tuple[str, ...] = ()


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
    retain_on_delete: bool = False
    """Pulumi leaves it in the cluster when it is deleted from the program or the stack."""
    options: ResourceOptionsSeen = field(default_factory=lambda: ResourceOptionsSeen())
    """Options Pulumi keeps outside the object (parent, aliases, ignored changes)."""

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
    warnings: list[str] = field(default_factory=list)
    """What the program logged as warnings (`pulumi.log.warn`), in order."""

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
        with _gc_paused():
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
    """Pulumi's mock monitor, keeping each registration's inputs and dependencies.

    A `pulumi up` that changes nothing: each resource's state is its inputs. Unlike
    `MockMonitor.RegisterResource`, which hands the inputs to `Mocks.new_resource` and
    serialises what it returns back, the response carries no outputs: the SDK then
    resolves every output to the input it sent (as for any property an engine leaves
    out), the same values without a second round through protobuf.
    """

    def __init__(self, recorder: _RecordingMocks) -> None:
        super().__init__(recorder)
        self.dependencies: dict[str, tuple[str, ...]] = {}
        self.retained: set[str] = set()
        self.options: dict[str, ResourceOptionsSeen] = {}
        self.order: list[str] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method's name)
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        state = _plain_properties(request.object)
        id_ = f"{request.name}-id"
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        self.dependencies[urn] = tuple(request.dependencies)
        if request.retainOnDelete:
            self.retained.add(urn)
        self.options[urn] = ResourceOptionsSeen(
            request.parent,
            tuple("no parent" if a.spec.noParent else str(a) for a in request.aliases),
            tuple(request.ignoreChanges),
        )
        self.order.append(urn)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many long-lived objects.

    Rendering keeps every resource, Output and future alive until it ends, so each
    collection walks an ever larger heap and finds little: at 1,000 graph nodes the
    collector took 40 % of rendering. Reference counting still frees what is dropped;
    cycles are collected once the collector runs again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _freeze_at_exit() -> None:
    """At interpreter exit, move every object out of the collector's sight.

    Shutdown runs several full collections while it tears modules down; after a large
    rendering each walks the whole heap (2 s at 1,000 graph nodes) to find nothing
    worth finalising. Frozen objects are still freed by reference counting.
    """
    gc.freeze()


class _NotPlain(Exception):
    """A value the SDK encodes specially (secret, unknown, asset, resource reference)."""


def _plain_properties(struct: Any) -> dict[str, Any]:
    """`rpc.deserialize_properties(struct)`, ~3× faster for plain JSON-like values.

    Reads the protobuf fields directly instead of through the `Struct` wrappers; any
    value Pulumi encodes specially is left to `rpc.deserialize_properties`.
    """
    try:
        if rpc._special_sig_key in struct.fields:
            raise _NotPlain
        return _plain_fields(struct.fields)
    except _NotPlain:
        return dict(rpc.deserialize_properties(struct))


def _plain_fields(fields: Any) -> dict[str, Any]:
    # Like Pulumi, a null in a map is no entry at all.
    return {k: v for k, v in ((k, _plain(v)) for k, v in fields.items()) if v is not None}


def _plain(value: Any) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        fields = value.struct_value.fields
        if rpc._special_sig_key in fields:
            raise _NotPlain
        return _plain_fields(fields)
    if kind == "list_value":
        return [_plain(v) for v in value.list_value.values]
    if kind == "string_value":
        if value.string_value == rpc.UNKNOWN:
            raise _NotPlain
        return value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    return None


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs each call at once, on the calling thread.

    The SDK hands every monitor call to the event loop's default executor, a thread
    pool; the mock monitor is pure Python and never blocks, so the threads only add
    hand-offs and contention for the GIL (a quarter of the time).
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to whoever awaits the call
            future.set_exception(exc)
        return future


def render_manifests(
    graph: Graph,
    config: KubernetesConfig,
    *,
    stack: str = "dev",
    program: Callable[[Graph, KubernetesConfig], dict[str, Any]] | None = None,
) -> Rendering:
    """Run the Kubernetes program under Pulumi's mock runtime and collect what it declared.

    Args:
        graph: the resolved (and possibly selected) graph.
        config: the stack configuration.
        stack: the stack name (it only appears in URNs).
        program: the program to run; `deploy` (without reading the store for stack
            outputs) unless a test swaps it.

    Raises:
        BackendError: the program failed (duplicate names, invalid specs for the cluster).
    """
    atexit.unregister(_freeze_at_exit)  # once, however many renderings
    atexit.register(_freeze_at_exit)
    monitor = _RecordingMonitor(_RecordingMocks())
    warnings = _WarningLog()
    mocks.set_mocks(
        monitor.mocks,
        project=CONFIG_NAMESPACE,
        stack=stack,
        preview=False,
        monitor=monitor,
        logger=warnings.logger,
    )
    outputs: dict[str, Any] = {}
    loops: list[asyncio.AbstractEventLoop] = []

    def run() -> Any:
        loop = asyncio.get_running_loop()
        loops.append(loop)
        loop.set_default_executor(_InlineExecutor())
        exported = (
            program(graph, config)
            if program is not None
            else deploy(graph, config, read_store=False)
        )
        return pulumi.Output.from_input(exported).apply(outputs.update)

    try:
        with _gc_paused():
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
    finally:
        for loop in loops:  # Pulumi's loop outlives the program: give it a thread pool back
            loop.set_default_executor(concurrent.futures.ThreadPoolExecutor())
    with _gc_paused():
        return Rendering(_ordered(monitor), outputs, warnings.messages)


class _WarningLog(logging.Handler):
    """Collects what the program logs at WARNING or above, for the caller to show.

    Under the mock runtime `pulumi.log.warn` goes to a Python logger; this one is private
    (not in the logging tree), so nothing reaches the root logger's handlers.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.logger = logging.Logger("auditc.kubernetes.program", logging.WARNING)
        self.logger.propagate = False
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


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
        found[urn] = RenderedResource(
            type_token,
            urn,
            manifest,
            monitor.dependencies[urn],
            retain_on_delete=urn in monitor.retained,
            options=monitor.options[urn],
        )
    waves = _waves(found)
    ranked = [
        RenderedResource(
            r.type,
            r.urn,
            _with_wave(r.manifest, waves[r.urn]),
            r.dependencies,
            waves[r.urn],
            r.retain_on_delete,
            r.options,
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
            for k, v in sorted(value.items(), key=_key_rank)
            if v is not None and not k.startswith("__")
        }
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_FIRST_KEYS = {
    key: i for i, key in enumerate(("apiVersion", "kind", "metadata", "immutable", "spec", "data"))
}


def _key_rank(item: tuple[str, Any]) -> tuple[int, str]:
    rank = _FIRST_KEYS.get(item[0])
    return (rank, "") if rank is not None else (len(_FIRST_KEYS), item[0])


class _Dumper(yaml.CSafeDumper):
    """Multi-line strings (the JSON files of ConfigMaps) as literal blocks, readable in review.

    libyaml's emitter (`CSafeDumper`) writes the same text as PyYAML's pure-Python one,
    ~10× faster.
    """


def _represent_str(dumper: yaml.CSafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(manifest: dict[str, Any]) -> str:
    return yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def write_manifests(rendering: Rendering, out: Path) -> list[Path]:
    """Write one YAML file per resource into `out`, replacing what auditc wrote there before.

    Only files the directory's marker says auditc wrote are replaced or removed
    (`compiler.write_generated_files`): a README, a kustomization or the user's own
    manifests in the same directory are never touched.

    Raises:
        UsageError: `out` is not a directory, or holds files auditc did not write under
            the names it would write.
    """
    return write_generated_files(out, rendering.files())


def validate_manifests(
    rendering: Rendering, version: str = KUBERNETES_VERSION, *, graph: Graph | None = None
) -> None:
    """Check every manifest against the Kubernetes OpenAPI schemas, unknown fields included,
    and against what the API server refuses beyond them (`_limits.py`: sizes, names, labels).

    Uses kubernetes-validate's strict schemas (`additionalProperties: false` everywhere)
    as `kubernetes_validate.validate(manifest, version, strict=True)` does, but loads
    them and builds the validator once per kind rather than once per manifest.

    Raises:
        BackendError: a manifest does not validate (every problem is listed).
        SpecError: given `graph`, a manifest breaks an API-server limit (at its resource).
        MissingDependencyError: kubernetes-validate is not installed.
    """
    try:
        schemas = _StrictSchemas(version)
    except ImportError as exc:
        raise MissingDependencyError(
            "validating manifests needs kubernetes-validate: pip install 'auditc[kubernetes]'"
        ) from exc
    width = max(2, len(str(len(rendering.resources))))
    named = [
        (f"{i:0{width}d}-{r.file_stem}.yaml", r.manifest)
        for i, r in enumerate(rendering.resources, start=1)
    ]
    problems = _problems(schemas, named)
    if problems:
        raise BackendError(
            f"{len(problems)} manifest(s) do not validate against Kubernetes {version}:\n"
            + "\n".join(problems)
        )
    check_limits(named, graph)


def _problems(schemas: _StrictSchemas, named: list[tuple[str, dict[str, Any]]]) -> list[str]:
    with _gc_paused():
        return [f"{name}: {p}" for name, manifest in named for p in schemas.problems(manifest)]


class _StrictSchemas:
    """kubernetes-validate's strict schemas for one Kubernetes version, a validator per kind."""

    def __init__(self, version: str) -> None:
        from kubernetes_validate import utils  # ImportError: not installed

        self._utils = utils
        self.desired = version.removeprefix("v")
        wanted = utils.major_minor(self.desired)
        if wanted > utils.latest_version():
            raise BackendError(f"kubernetes-validate does not support Kubernetes {wanted}")
        found = [v for v in utils.all_versions() if utils.major_minor(v) <= wanted][-1]
        self.directory = f"kubernetes-json-schema/v{found}-local-strict"
        self._registry: Any = None
        self._validators: dict[tuple[str, str], Any] = {}

    def problems(self, manifest: dict[str, Any]) -> list[str]:
        """`path: message` of the manifest's first schema violation (none if valid)."""
        key = (str(manifest.get("apiVersion")), str(manifest.get("kind")))
        try:
            validator = self._validators.get(key) or self._validator(*key)
        except self._utils.SchemaNotFoundError as exc:
            return [f"(root): {exc.message}"]
        # `validate` reports the best match among the errors, as kubernetes-validate does.
        try:
            validator.validate(manifest)
        except self._utils.jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path) or "(root)"
            return [f"{where}: {exc.message}"]
        return []

    def _validator(self, api_version: str, kind: str) -> Any:
        # jsonschema and referencing as kubernetes-validate imports them: the same versions.
        utils = self._utils
        jsonschema, Registry, Resource = utils.jsonschema, utils.Registry, utils.Resource  # noqa: N806
        # `rbac.authorization.k8s.io/v1` → `rbac-v1`, as kubernetes-validate names its files.
        api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        try:
            schema = utils.schema_contents(
                f"{self.directory}/{kind.lower()}-{api}.json", self.desired
            )
        except FileNotFoundError:
            raise utils.SchemaNotFoundError(
                version=utils.major_minor(self.desired), kind=kind, api_version=api_version
            ) from None
        if self._registry is None:
            definitions = utils.schema_contents(f"{self.directory}/_definitions.json", self.desired)
            self._registry = Resource.from_contents(definitions) @ Registry()
        registry = Resource.from_contents(schema) @ self._registry
        validator = jsonschema.validators.Draft202012Validator(schema, registry=registry)
        self._validators[(api_version, kind)] = validator
        return validator
