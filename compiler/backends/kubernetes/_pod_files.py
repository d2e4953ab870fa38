"""What each pod reads: runner configs with in-pod paths and store URIs.

The ConfigMap of a node carries JSON files mounted at `/etc/auditc/`:

| file | read by | model |
| --- | --- | --- |
| `inputs.json` | `python -m runners.fetch inputs` | `runners.fetch.FetchConfig` |
| `server.json` | `python -m runners.inference` (sidecar / session) | `runners.inference.ServerConfig` |
| `step.json` | `runners.datasets` / `runners.imports` / `runners.evaluation` / `runners.methods` | the step's config (`compiler/backends/_runner_configs.py`, as the local backend builds it) |
| `commit.json` | `python -m runners.fetch commit` | `runners.fetch.CommitConfig` |

Inputs (data files, Module and model directories, notebooks) are fetched into
`/work/inputs/<project path>`; store locations are node URIs under the stack's store.
Pure: no pulumi, no file reads, no network.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schemas import (
    BackendError,
    Evaluation,
    InferenceService,
    Method,
    Model,
)

from ..._project import path_refs
from .. import _runner_configs as runner_configs
from .._fingerprints import service_version
from ._stack_config import KubernetesConfig

if TYPE_CHECKING:
    from pydantic import BaseModel

    from runners.fetch import FetchItem

    from ..._resolve import Graph, Node

__all__ = [
    "CONFIG_DIR",
    "INPUTS_DIR",
    "SERVER_HOST",
    "SERVER_PORT",
    "STARTED_FILE",
    "STATE_DIR",
    "NodeFiles",
    "ServerPlan",
    "dataset_files",
    "evaluation_files",
    "method_files",
    "node_uri",
    "prefetch_files",
    "prefetch_marker",
    "server_plan",
    "session_files",
    "vllm_parallel_sizes",
    "wait_json",
]

CONFIG_DIR = "/etc/auditc"
INPUTS_DIR = "/work/inputs"
STATE_DIR = "/work/state"
STARTED_FILE = f"{STATE_DIR}/started_at"
SERVER_PORT = 8000
"""Port of auditc's and vLLM's servers inside a pod."""
SERVER_HOST = "0.0.0.0"
"""Servers in pods listen on the pod network: the kubelet's probes come to the pod IP."""


def node_uri(store_root: str, node: Node) -> str:
    """The node's URI as pods see it (what `Store.uri_of(node.store_path)` gives there)."""
    if "://" not in store_root:
        return posixpath.join(store_root.rstrip("/"), node.store_path)
    scheme, _, rest = store_root.partition("://")
    location, _, query = rest.partition("?")
    joined = posixpath.join(location.rstrip("/"), node.store_path)
    return f"{scheme}://{joined}" + (f"?{query}" if query else "")


def _project_path(node: Node, value: str) -> str:
    base = posixpath.dirname(node.location.file)
    return posixpath.normpath(posixpath.join(base, value))


def _pod_path(node: Node, value: str) -> str:
    return f"{INPUTS_DIR}/{_project_path(node, value)}"


def _places(config: KubernetesConfig) -> runner_configs.RunnerPlaces:
    """Spec paths as fetched into a pod, node directories as pods see the stack's store."""
    return runner_configs.RunnerPlaces(
        locate=_pod_path, node_uri=lambda node: node_uri(config.store.root, node)
    )


@dataclass(frozen=True)
class ServerPlan:
    """How a service runs in a pod: which image, command and port (None for `external`)."""

    image: str
    command: list[str]
    args: list[str]
    port: int
    health_path: str
    env: dict[str, str]
    """Non-secret environment variables."""
    wants_hf_token: bool
    server_json: str | None
    """`ServerConfig` JSON for auditc's own runners."""


@dataclass(frozen=True)
class NodeFiles:
    """The files of a node's ConfigMap and what the pod needs to know about them."""

    data: dict[str, str]
    """File name under /etc/auditc → content."""
    uri: str
    """The node's URI in the store (empty for sessions)."""
    server: ServerPlan | None = None
    image: str | None = None
    """The image whose code produced the node's outputs (for the manifest)."""


_POSITIONS: tuple[dict[str, Node], dict[str, int]] | None = None


def graph_position(graph: Graph) -> dict[str, int]:
    """Node name → its index in the graph's (topological) order, computed once per graph.

    Per-node lookups that keep graph order sort by this index instead of scanning the
    whole graph, which would make the program quadratic in the number of nodes.
    """
    global _POSITIONS
    if _POSITIONS is None or _POSITIONS[0] is not graph.nodes:
        _POSITIONS = (graph.nodes, {name: i for i, name in enumerate(graph.nodes)})
    return _POSITIONS[1]


def in_graph_order(graph: Graph, names: Iterable[str]) -> list[Node]:
    """The nodes named, in the graph's order."""
    position = graph_position(graph)
    return [graph[name] for name in sorted(set(names), key=position.__getitem__)]


def _closure(graph: Graph, start: Iterable[str]) -> list[Node]:
    """The start nodes and every configuration node they need, not crossing workflows."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(up for up in graph[name].upstream if not graph[up].is_workflow)
    return in_graph_order(graph, seen)


def _fetch_items(graph: Graph, start: Iterable[str]) -> list[FetchItem]:
    from runners.fetch import FetchItem

    items: list[FetchItem] = []
    for node in _closure(graph, start):
        for ref in path_refs(node.resource):
            path = _project_path(node, ref.value)
            items.append(
                FetchItem(
                    path=path,
                    sha256=node.files[path],
                    type=ref.type,
                    dest=f"{INPUTS_DIR}/{path}",
                )
            )
    return items


def _inputs_json(
    graph: Graph, start: Iterable[str], config: KubernetesConfig, started: bool
) -> str:
    from runners.fetch import FetchConfig

    return FetchConfig(
        store=config.store.root,
        items=_fetch_items(graph, start),
        started_file=STARTED_FILE if started else None,
    ).model_dump_json(indent=2)


# --------------------------------------------------------------------- servers


def server_plan(
    graph: Graph, service_name: str, config: KubernetesConfig, host: str
) -> ServerPlan | None:
    """How `service_name` is served in a pod, listening on `host`; None for `external`.

    Raises:
        BackendError: a vLLM service whose model is not a Hugging Face repo or a directory.
    """
    node = graph[service_name]
    service = node.resource
    assert isinstance(service, InferenceService)
    runner = service.spec.runner
    if runner.kind == "external":
        return None
    if runner.kind == "container":
        return ServerPlan(
            image=runner.image,
            command=list(runner.command or []),
            args=list(runner.args),
            port=runner.port,
            health_path=runner.health_path,
            env=dict(runner.env),
            wants_hf_token=False,
            server_json=None,
        )
    if runner.kind == "vllm":
        return _vllm_plan(graph, node, config, host)
    return ServerPlan(
        image=config.images.runner,
        command=["python", "-m", "runners.inference"],
        args=[f"{CONFIG_DIR}/server.json"],
        port=SERVER_PORT,
        health_path="/health",
        env={},
        wants_hf_token=runner.kind == "huggingface",
        server_json=_server_json(graph, node, host),
    )


def _server_json(graph: Graph, node: Node, host: str) -> str:
    config = runner_configs.server_config(
        graph, node.name, locate=_pod_path, host=host, port=SERVER_PORT
    )
    return config.model_dump_json(indent=2)


def _vllm_plan(graph: Graph, node: Node, config: KubernetesConfig, host: str) -> ServerPlan:
    service = node.resource
    assert isinstance(service, InferenceService) and service.spec.runner.kind == "vllm"
    assert service.spec.model is not None
    model_node = graph[service.spec.model]
    spec = model_node.resource.spec
    assert isinstance(model_node.resource, Model)
    if spec.huggingface is not None:  # type: ignore[union-attr]
        source = [spec.huggingface.repo, "--revision", spec.huggingface.revision]  # type: ignore[union-attr]
    elif spec.path is not None:  # type: ignore[union-attr]
        source = [_pod_path(model_node, spec.path)]  # type: ignore[union-attr]
    else:
        raise BackendError(
            f"InferenceService/{node.name}: a 'vllm' runner serves a Hugging Face repo or a "
            f"model directory, but Model/{model_node.name} is a Python callable"
        )
    args = [
        *source,
        "--host",
        host,
        "--port",
        str(SERVER_PORT),
        "--served-model-name",
        model_node.name,
        *_parallel_args(node, service),
        *service.spec.runner.args,
    ]
    return ServerPlan(
        image=config.images.vllm or service.spec.runner.image,
        command=["vllm", "serve"],
        args=args,
        port=SERVER_PORT,
        health_path="/health",
        env={},
        wants_hf_token=True,
        server_json=None,
    )


_PARALLEL_FLAGS = {
    "--tensor-parallel-size": "tensor",
    "-tp": "tensor",
    "--pipeline-parallel-size": "pipeline",
    "-pp": "pipeline",
    "--data-parallel-size": "data",
    "-dp": "data",
}


def vllm_parallel_sizes(args: Iterable[str]) -> dict[str, int]:
    """The parallel sizes `vllm serve` arguments set (`{"tensor": 2}`), by kind.

    Understands `--flag N`, `--flag=N` and the short forms `-tp`, `-pp`, `-dp`.

    Raises:
        ValueError: a size is not a positive integer.
    """
    found: dict[str, int] = {}
    items = list(args)
    for i, item in enumerate(items):
        flag, equals, value = item.partition("=")
        if flag not in _PARALLEL_FLAGS:
            continue
        text = value if equals else (items[i + 1] if i + 1 < len(items) else "")
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"{flag} expects a positive integer, got {text!r}")
        found[_PARALLEL_FLAGS[flag]] = int(text)
    return found


def _parallel_args(node: Node, service: InferenceService) -> list[str]:
    """`--tensor-parallel-size N` for N GPUs unless the args already split the model.

    vLLM uses one GPU unless told otherwise, so a service that asks for N GPUs would
    hold N - 1 of them idle; and args that use more or fewer GPUs than the pod gets
    would fail at start or waste them.

    Raises:
        BackendError: the args' tensor × pipeline × data parallel sizes differ from
            `resources.accelerator.count`.
    """
    accelerator = service.spec.resources.accelerator
    gpus = accelerator.count if accelerator is not None else 0
    try:
        sizes = vllm_parallel_sizes(service.spec.runner.args)  # type: ignore[union-attr]
    except ValueError as exc:
        raise BackendError(
            f"InferenceService/{node.name} ({node.location}): runner.args: {exc}"
        ) from None
    if not sizes:
        return ["--tensor-parallel-size", str(gpus)] if gpus > 1 else []
    used = math.prod(sizes.values())
    if gpus and used != gpus:
        detail = " × ".join(f"{kind} {size}" for kind, size in sizes.items())
        raise BackendError(
            f"InferenceService/{node.name} ({node.location}): resources.accelerator.count is "
            f"{gpus} but runner.args make vLLM use {used} GPU(s) ({detail} parallel); make "
            "them equal (without parallel sizes in the args, auditc sets "
            f"--tensor-parallel-size {gpus})"
        )
    return []


# ----------------------------------------------------------------------- nodes


def image_digest(reference: str) -> str | None:
    """The `sha256:…` digest a reference pins (`repo@sha256:…`), or None for a tag."""
    _, at, digest = reference.partition("@")
    return digest if at else None


def _commit_json(
    graph: Graph,
    node: Node,
    uri: str,
    image: str | None,
    *,
    started: bool,
    count_rows: bool,
    expected: dict[str, Any] | None = None,
    images: Iterable[str] = (),
) -> str:
    from runners.fetch import CommitConfig

    upstream = graph.upstream(node.name)
    manifest = {
        "kind": node.kind,
        "name": node.name,
        "id": node.id,
        "spec": node.resource.model_dump(mode="json"),
        "upstream": {n.key: n.id for n in in_graph_order(graph, upstream)},
        "input_files": dict(node.files),
        "model_revision": graph.model_revision(node.name),
        "image": image,
        # Every image the node's pods run; a tag's digest is not known before the run.
        "image_digests": {
            ref: image_digest(ref) for ref in sorted({*images, *([image] if image else [])})
        },
        "service_version": service_version(graph, node),
    }
    return CommitConfig(
        node_uri=uri,
        manifest=manifest,
        started_file=STARTED_FILE if started else None,
        count_rows=count_rows,
        expected=expected,
    ).model_dump_json(indent=2)


def _step_files(
    graph: Graph, node: Node, config: KubernetesConfig, step: BaseModel, *, count_rows: bool
) -> NodeFiles:
    """ConfigMap files of a Job that fetches the node's inputs, runs one step, and commits."""
    uri = node_uri(config.store.root, node)
    image = config.images.runner
    data = {
        "inputs.json": _inputs_json(graph, [node.name], config, started=True),
        "step.json": step.model_dump_json(indent=2),
        "commit.json": _commit_json(graph, node, uri, image, started=True, count_rows=count_rows),
    }
    return NodeFiles(data, uri, image=image)


def dataset_files(graph: Graph, node: Node, config: KubernetesConfig) -> NodeFiles:
    """ConfigMap files of a Dataset's ingestion Job."""
    step = runner_configs.ingest_config(graph, node, _places(config))
    return _step_files(graph, node, config, step, count_rows=True)


def import_files(graph: Graph, node: Node, config: KubernetesConfig) -> NodeFiles:
    """ConfigMap files of the Job of an Evaluation whose spec says `imported`."""
    step = runner_configs.import_config(graph, node, _places(config))
    return _step_files(graph, node, config, step, count_rows=True)


def evaluation_files(graph: Graph, node: Node, config: KubernetesConfig) -> NodeFiles:
    """ConfigMap files of an Evaluation's Indexed Job (and of its commit Job)."""
    evaluation = node.resource
    assert isinstance(evaluation, Evaluation)
    assert evaluation.spec.service is not None and evaluation.spec.dataset is not None
    service = graph[evaluation.spec.service].resource
    assert isinstance(service, InferenceService)
    runner = service.spec.runner
    # The kubelet probes the server at the pod IP, so it listens on every interface; a
    # NetworkPolicy denies all ingress to evaluation pods, and the client in the same
    # pod talks to it over loopback (which no NetworkPolicy filters).
    server = server_plan(graph, service.name, config, SERVER_HOST)
    uri = node_uri(config.store.root, node)
    dataset_uri = node_uri(config.store.root, graph[evaluation.spec.dataset])
    step = runner_configs.evaluation_config(
        graph,
        node,
        _places(config),
        base_url=runner.url if runner.kind == "external" else f"http://127.0.0.1:{server.port}",  # type: ignore[union-attr]
        shard=(0, evaluation.spec.shards),
        # The client waits for its sidecar itself (exit 4 after timeouts.ready): a sidecar
        # is restarted whatever the pod's restartPolicy, so only the client can fail the shard.
        ready_url=(
            f"http://127.0.0.1:{server.port}{server.health_path}"
            if server is not None
            else _external_ready_url(runner)
        ),
        ready_any_status=runner.kind == "external" and runner.health_path is None,
        progress=False,
        concurrency_cap=_shard_share(config.external_concurrency, evaluation.spec.shards)
        if runner.kind == "external"
        else None,
    )
    image = server.image if server is not None else config.images.runner
    expected = {"dataset_uri": dataset_uri, "replications": evaluation.spec.replications}
    data = {
        "inputs.json": _inputs_json(graph, [service.name], config, started=False),
        "step.json": step.model_dump_json(indent=2),
        "commit.json": _commit_json(
            graph,
            node,
            uri,
            image,
            started=False,
            count_rows=True,
            expected=expected,
            images=[config.images.runner],
        ),
    }
    if server is not None and server.server_json is not None:
        data["server.json"] = server.server_json
    return NodeFiles(data, uri, server=server, image=image)


def _external_ready_url(runner: Any) -> str | None:
    """An external service is polled too (its `health_path`, else any answer at its URL)."""
    if runner.kind != "external":
        return None
    url: str = runner.url.rstrip("/") + (runner.health_path or "")
    return url


def _shard_share(total: int | None, shards: int) -> int | None:
    """One shard's part of a stack's cap on requests in flight to a shared service."""
    return None if total is None else max(1, total // shards)


def method_files(graph: Graph, node: Node, config: KubernetesConfig) -> NodeFiles:
    """ConfigMap files of a Method's Job."""
    method = node.resource
    assert isinstance(method, Method)
    step = runner_configs.method_config(graph, node, _places(config))
    measurement = method.spec.output.kind == "Measurement"
    return _step_files(graph, node, config, step, count_rows=measurement)


def session_files(graph: Graph, service_name: str, config: KubernetesConfig) -> NodeFiles:
    """ConfigMap files of an InferenceSession's Deployment (servers listen on all interfaces)."""
    server = server_plan(graph, service_name, config, SERVER_HOST)
    data = {"inputs.json": _inputs_json(graph, [service_name], config, started=False)}
    if server is not None and server.server_json is not None:
        data["server.json"] = server.server_json
    return NodeFiles(data, "", server=server, image=server.image if server else None)


# ------------------------------------------------------- asynchronous runs, caches


def hub_model(graph: Graph, service_name: str) -> str | None:
    """The name of the Hugging Face Model a service serves, or None (a path, a callable)."""
    service = graph[service_name].resource
    assert isinstance(service, InferenceService)
    if service.spec.model is None:
        return None
    model = graph[service.spec.model].resource
    assert isinstance(model, Model)
    return model.name if model.spec.huggingface is not None else None


def prefetch_marker(config: KubernetesConfig, model_name: str, model_id: str) -> str:
    """The file a prefetch Job writes in the shared cache once the model is there."""
    return f"{config.model_cache.mount_path}/auditc-prefetched/{model_name}-{model_id}"


def prefetch_files(graph: Graph, node: Node, config: KubernetesConfig) -> NodeFiles:
    """ConfigMap files of a Model's prefetch Job."""
    from runners.fetch import ModelFetchConfig

    model = node.resource
    assert isinstance(model, Model) and model.spec.huggingface is not None
    source = model.spec.huggingface
    step = ModelFetchConfig(
        repo=source.repo,
        revision=source.revision,
        allow_patterns=source.allow_patterns,
        ignore_patterns=source.ignore_patterns,
        marker=prefetch_marker(config, node.name, node.id),
    )
    return NodeFiles({"model.json": step.model_dump_json(indent=2)}, "")


def wait_json(
    graph: Graph, upstream: Iterable[str], config: KubernetesConfig, marker: str | None
) -> str:
    """`wait.json`: the upstream nodes (and prefetch marker) a pod of an asynchronous run waits for."""
    from runners.fetch import WaitConfig, WaitNode

    nodes = [
        WaitNode(
            key=graph[name].key, id=graph[name].id, uri=node_uri(config.store.root, graph[name])
        )
        for name in upstream
    ]
    return WaitConfig(nodes=nodes, files=[marker] if marker else []).model_dump_json(indent=2)
