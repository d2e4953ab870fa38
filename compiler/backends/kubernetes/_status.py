"""Where a deployed stack stands: each node's Job state and whether its outputs are committed.

`auditc status --stack NAME` and `auditc wait --stack NAME` read two sources and join
them on the node id, which every Job carries in its `auditc.io/id` label:

- the cluster's Jobs in the stack's namespace (`read_jobs`, through the Kubernetes API
  with the usual kubeconfig), each reduced to one `JobState`;
- the store: a node is *complete* only once its `manifest.json` says so, as for
  `auditc run` — a Job that succeeded has committed its outputs, and a node stays
  complete after `ttlSecondsAfterFinished` deleted its Job.

The Jobs are read before the store: a Job seen complete wrote its manifest before
it completed, so the store read after it holds that manifest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas import AuditcError, BackendError, MissingDependencyError, Store

from ..._resolve import Graph, Node
from ._names import DNS_LABEL_MAX, LABEL_PREFIX

__all__ = [
    "JobInfo",
    "JobState",
    "NodeState",
    "NodeStatus",
    "StackStatus",
    "committed_ids",
    "job_info",
    "read_jobs",
    "stack_status",
]

JobState = Literal["queued", "pending", "running", "succeeded", "failed"]
"""A Job's state: `queued` suspended (Kueue has not admitted it yet), `pending` no pod
active yet, `running` pods active, `succeeded` or `failed` (its terminal condition)."""

NodeState = Literal[
    "complete", "failed", "running", "pending", "queued", "not submitted", "not committed"
]
"""A node's state: `complete` its outputs are committed in the store; else that of its
Jobs, the worst first (`failed`, `running`, `pending`, `queued`); `not submitted` no Job
of it in the cluster (yet); `not committed` its Jobs succeeded but the store holds no
complete manifest of it (another store, or outputs removed)."""

_MANAGED = "app.kubernetes.io/managed-by=auditc"
_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
_ORDER: tuple[JobState, ...] = ("failed", "running", "pending", "queued", "succeeded")


class JobInfo(BaseModel):
    """One auditc Job, as the cluster reports it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    node_id: str
    """The `auditc.io/id` label: the node's id (cut to 63 characters)."""
    role: str
    """`dataset`, `evaluation`, `commit`, `method` or `prefetch`."""
    state: JobState
    detail: str = ""
    """Pods and the reason of a terminal or suspended state, for people."""


class NodeStatus(BaseModel):
    """One node of the stack's graph: its state and the Jobs behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    """`Kind/name`."""
    id: str
    state: NodeState
    committed: bool
    """Whether the store holds its complete outputs."""
    jobs: list[JobInfo]
    detail: str = ""


class StackStatus(BaseModel):
    """Every node a stack deploys, in graph order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    store: str
    nodes: list[NodeStatus]

    @property
    def done(self) -> bool:
        """Whether every node's outputs are committed (and no prefetch Job failed)."""
        return all(n.state == "complete" for n in self.nodes)

    @property
    def failed(self) -> list[NodeStatus]:
        """Nodes that cannot complete without a fix: a Job failed, or it succeeded uncommitted."""
        return [n for n in self.nodes if n.state in ("failed", "not committed")]

    def counts(self) -> dict[str, int]:
        """How many nodes are in each state."""
        found: dict[str, int] = {}
        for node in self.nodes:
            found[node.state] = found.get(node.state, 0) + 1
        return found


def _condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition  # type: ignore[no-any-return]
    return None


def _pods(status: Mapping[str, Any], completions: int) -> str:
    parts = [f"{status.get('succeeded') or 0}/{completions} succeeded"]
    for key in ("active", "failed"):
        if status.get(key):
            parts.append(f"{status[key]} {key}")
    return ", ".join(parts)


def job_info(job: Mapping[str, Any]) -> JobInfo | None:
    """The state of one Job object as the API returns it; None for a Job not made by auditc."""
    metadata = job.get("metadata") or {}
    labels = metadata.get("labels") or {}
    node_id = labels.get(f"{LABEL_PREFIX}/id")
    if not node_id:
        return None
    spec, status = job.get("spec") or {}, job.get("status") or {}
    pods = _pods(status, int(spec.get("completions") or 1))
    state: JobState
    for kind, state in (("Failed", "failed"), ("FailureTarget", "failed")):
        condition = _condition(job, kind)
        if condition is not None:
            why = ": ".join(p for p in (condition.get("reason"), condition.get("message")) if p)
            return JobInfo(
                name=metadata.get("name", "?"),
                node_id=node_id,
                role=labels.get(f"{LABEL_PREFIX}/role", "?"),
                state=state,
                detail=f"{why} ({pods})" if why else pods,
            )
    if _condition(job, "Complete") or _condition(job, "SuccessCriteriaMet"):
        state, detail = "succeeded", pods
    elif spec.get("suspend"):
        queue = labels.get(_QUEUE_LABEL)
        state = "queued"
        detail = f"suspended until Kueue admits it (queue {queue})" if queue else "suspended"
    elif status.get("active"):
        state, detail = "running", pods
    else:
        state, detail = "pending", f"no pod active yet ({pods})"
    return JobInfo(
        name=metadata.get("name", "?"),
        node_id=node_id,
        role=labels.get(f"{LABEL_PREFIX}/role", "?"),
        state=state,
        detail=detail,
    )


def read_jobs(
    namespace: str, *, kubeconfig: str | None = None, context: str | None = None
) -> list[dict[str, Any]]:
    """Every Job auditc made in `namespace`, as the API returns them (plain JSON).

    The cluster comes from the kubeconfig (`$KUBECONFIG`, `~/.kube/config`, or
    `kubeconfig`) and its `context`, else from the pod's service account when run in
    a cluster.

    Raises:
        MissingDependencyError: the `kubernetes` client is not installed.
        BackendError: no cluster is configured, or the API refused or failed the request.
    """
    try:
        import kubernetes
    except ImportError as exc:
        raise MissingDependencyError(
            "reading Jobs needs the Kubernetes client: pip install 'auditc[kubernetes]'"
        ) from exc
    import json

    import urllib3

    try:
        try:
            kubernetes.config.load_kube_config(config_file=kubeconfig, context=context)
        except kubernetes.config.ConfigException:
            if kubeconfig or context:
                raise
            kubernetes.config.load_incluster_config()
        api = kubernetes.client.BatchV1Api()
        response = api.list_namespaced_job(
            namespace, label_selector=_MANAGED, _preload_content=False, _request_timeout=30
        )
        items: list[dict[str, Any]] = json.loads(response.data)["items"]
    except kubernetes.config.ConfigException as exc:
        raise BackendError(f"no Kubernetes cluster configured: {exc}") from exc
    except kubernetes.client.ApiException as exc:
        raise BackendError(
            f"cannot list the Jobs of namespace {namespace!r}: {exc.status} {exc.reason}"
        ) from exc
    except urllib3.exceptions.HTTPError as exc:
        why = getattr(exc, "reason", None) or exc
        raise BackendError(f"cannot list the Jobs of namespace {namespace!r}: {why}") from exc
    except (OSError, ValueError, KeyError) as exc:
        # A body that is not a JobList: ValueError or KeyError.
        raise BackendError(f"cannot list the Jobs of namespace {namespace!r}: {exc}") from exc
    return items


def committed_ids(store_uri: str, nodes: Iterable[Node]) -> set[str]:
    """Ids of the `nodes` whose complete outputs the store holds.

    Raises:
        StoreError: the store cannot be opened or a manifest cannot be read.
    """
    try:
        store = Store.open(store_uri, create=False)
    except AuditcError:
        if "://" in store_uri:
            raise
        return set()  # a local store not made yet holds nothing
    return {node.id for node in nodes if store.is_complete(node.store_path)}


def _node_status(node: Node, jobs: list[JobInfo], committed: bool) -> NodeStatus:
    key = f"{node.kind}/{node.name}"
    if committed:
        return NodeStatus(key=key, id=node.id, state="complete", committed=True, jobs=jobs)
    if not jobs:
        return NodeStatus(key=key, id=node.id, state="not submitted", committed=False, jobs=[])
    worst = min(jobs, key=lambda j: _ORDER.index(j.state))
    if worst.state == "succeeded" and node.kind == "Model":
        state: NodeState = "complete"  # a prefetch Job: its output is the cache volume
    elif worst.state == "succeeded":
        state = "not committed"
    else:
        state = worst.state
    detail = f"Job {worst.name}: {worst.detail}"
    if state == "not committed":
        detail = "its Jobs succeeded, but the store holds no complete manifest of this id"
    return NodeStatus(key=key, id=node.id, state=state, committed=False, jobs=jobs, detail=detail)


def stack_status(
    graph: Graph,
    jobs: Iterable[Mapping[str, Any]],
    committed: set[str],
    *,
    namespace: str,
    store: str,
) -> StackStatus:
    """Each workflow node of `graph` (and each Model with a prefetch Job), joined with its Jobs.

    Jobs of other ids (earlier deployments left in the namespace) are not shown.
    """
    by_id: dict[str, list[JobInfo]] = {}
    for job in jobs:
        info = job_info(job)
        if info is not None:
            by_id.setdefault(info.node_id, []).append(info)
    nodes = []
    for node in graph:
        found = sorted(by_id.get(node.id[:DNS_LABEL_MAX], []), key=lambda j: j.name)
        if node.is_workflow or (node.kind == "Model" and found):
            nodes.append(_node_status(node, found, node.id in committed))
    return StackStatus(namespace=namespace, store=store, nodes=nodes)
