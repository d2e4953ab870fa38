"""The Pulumi program: a resolved `Graph` → typed `pulumi_kubernetes` resources.

`deploy(graph, config)` declares, in one namespace:

- a Namespace (or uses an existing one), a ServiceAccount without API access, and the
  claims the stack asks for (store volume, model cache);
- per Dataset: a ConfigMap and an ingestion Job;
- per Evaluation that `imported` its output: a ConfigMap and an import Job;
- per other Evaluation: a ConfigMap, an Indexed Job (one pod per shard: fetch inputs → the
  inference server as a native sidecar → the evaluation client on its completion
  index) and a commit Job that writes the manifest once every shard is done;
- per Method: a ConfigMap and a Job (fetch → method → commit), after its inputs;
- per InferenceSession: a ConfigMap, Deployment, Service and NetworkPolicy.

Jobs are ordered with `depends_on` (pulumi-kubernetes waits for a Job to complete).
Names carry node ids, so only nodes whose ids changed get new resources. It exports,
per node, its store URI and its Job's name and status.

`pulumi_main.py` runs `deploy` under the Pulumi engine; `render_manifests` runs it under
Pulumi's mock runtime to write the same resources as YAML.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi_kubernetes.apps import v1 as apps
from pulumi_kubernetes.batch import v1 as batch
from pulumi_kubernetes.core import v1 as core
from pulumi_kubernetes.meta import v1 as meta
from pulumi_kubernetes.networking import v1 as networking

from runners.evaluation import EXIT_NOT_READY
from schemas import (
    BackendError,
    Dataset,
    Evaluation,
    InferenceService,
    InferenceSession,
    Method,
    Model,
)

from . import _pods as pods
from ._budget import check_budget
from ._checks import image_problems, pod_warnings
from ._names import indexed_job_reserve, is_dns_label, node_labels, object_name, service_name
from ._network import (
    EXTERNAL_LABEL,
    HUB_LABEL,
    JOB_POD_LABEL,
    external_policy,
    hub_policy,
    job_policy,
)
from ._outputs import safety_case_output
from ._pod_files import (
    CONFIG_DIR,
    NodeFiles,
    dataset_files,
    evaluation_files,
    graph_position,
    hub_model,
    import_files,
    method_files,
    prefetch_files,
    prefetch_marker,
    session_files,
    wait_json,
)
from ._stack_config import ContainerResources, KubernetesConfig, PvcConfig

if TYPE_CHECKING:
    from ..._resolve import Graph, Node

__all__ = [
    "CONFIG_EXIT_CODE",
    "NODE_COMPONENT",
    "NOT_READY_EXIT_CODE",
    "SERVICE_ACCOUNT",
    "AuditNode",
    "deploy",
]

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT = "auditc-runner"
"""The default name of the pods' ServiceAccount (`auditc:serviceAccount.name`)."""
NODE_COMPONENT = "auditc:audit"
"""Type prefix of the component resource of each audit node (`auditc:audit:Evaluation`)."""
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}
"""On every Job of an asynchronous stack: `pulumi up` returns once the Job is created."""
CONFIG_EXIT_CODE = 2
"""Runner exit code for an invalid config or input: the Job fails at once, no retries."""
NOT_READY_EXIT_CODE = EXIT_NOT_READY
"""The evaluation client's exit code when its server was not ready in time: the shard fails."""
CLIENT_CONTAINER = "client"
COMMIT_DEADLINE_S = 1800
_ANNOTATION_CONFIG = "auditc.io/config-hash"
REPLACE_UNREADY = {"pulumi.com/replaceUnready": "true"}
"""On every Job: the next `pulumi up` replaces a Job that failed (or never finished)
instead of waiting on it again; without it, fixing the cause (say, `auditc push` of a
missing input) and re-running `pulumi up` would not run the Job again."""
KEEP_ON_DELETE = {"argocd.argoproj.io/sync-options": "Delete=false,Prune=false"}
"""On what holds results and users' Secrets (the namespace, claims): a GitOps tool never
deletes them either (Pulumi's equivalent is `retain_on_delete`)."""


class AuditNode(pulumi.ComponentResource):
    """One audit node's resources, grouped so that `pulumi preview` shows a tree per workflow.

    Its children were once declared at the stack's root: the alias keeps their URNs'
    history, so a stack deployed before the grouping updates in place instead of
    replacing (and so re-running) every Job.
    """

    def __init__(self, kind: str, name: str, node_id: str) -> None:
        super().__init__(f"{NODE_COMPONENT}:{kind}", name, {"nodeId": node_id}, None)
        self.node_id = node_id

    def child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        """Options of a resource of this node: its parent, and its URN from before."""
        return pulumi.ResourceOptions(
            parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)], **kwargs
        )


def deploy(graph: Graph, config: KubernetesConfig, *, read_store: bool = True) -> dict[str, Any]:
    """Declare the graph's Kubernetes resources and export each node's URI and Job status.

    Must run inside a Pulumi program (the engine, or `pulumi.runtime.test` with mocks).
    With `read_store`, each SafetyCase's output carries its scores and gate results
    read from the store once its Job is done (`compile` renders without touching it).

    Returns:
        The stack outputs, as exported.

    Raises:
        BackendError: two resources would get the same name, a name is not a valid
            Kubernetes name, or an image is named by tag while the stack requires digests.
    """
    problems = image_problems(graph, config)
    if problems and config.images.require_digests:
        raise BackendError(
            "auditc:images.requireDigests is set, but images are named by tag:\n  "
            + "\n  ".join(problems)
        )
    for message in [*problems, *pod_warnings(graph, config)]:
        pulumi.log.warn(message)
    if read_store and config.budget.gpu_hours is not None and config.store.uri is not None:
        from ..._estimate import format_hours, store_manifests

        spent = check_budget(graph, config, store_manifests(config.store.uri))
        pulumi.log.info(
            f"GPU-hours of this deployment: {format_hours(spent)} "
            f"(budget {config.budget.gpu_hours:g})"
        )
    outputs = _Program(graph, config, read_store=read_store).build()
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


@dataclass
class _Program:
    graph: Graph
    config: KubernetesConfig
    read_store: bool = True
    shared: list[pulumi.Resource] = field(default_factory=list)
    """ServiceAccount, claims and policies (which wait for the Namespace): everything else
    waits for them."""
    done: dict[str, pulumi.Resource] = field(default_factory=dict)
    """Node name → the resource whose completion means its outputs are in the store."""
    prefetched: dict[str, pulumi.Resource] = field(default_factory=dict)
    """Model name → its prefetch Job."""
    chains: dict[str, int] = field(default_factory=dict)
    """Node name → seconds from the submission of an asynchronous run to its end, at most."""
    names: set[tuple[str, str]] = field(default_factory=set)
    nodes: dict[str, Any] = field(default_factory=dict)
    safety_cases: dict[str, Any] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.config.namespace

    @property
    def asynchronous(self) -> bool:
        return not self.config.jobs.wait_for_completion

    def build(self) -> dict[str, Any]:
        self._shared()
        for node in self.graph:
            resource = node.resource
            if isinstance(resource, Dataset):
                self._dataset(node)
            elif isinstance(resource, Evaluation) and resource.spec.imported is not None:
                self._imported_evaluation(node)
            elif isinstance(resource, Evaluation):
                self._evaluation(node)
            elif isinstance(resource, Method):
                self._method(node)
            elif isinstance(resource, InferenceSession):
                self._session(node)
        return {
            "namespace": self.namespace,
            "store": self.config.store.root,
            "nodes": self.nodes,
            "safetyCases": self.safety_cases,
        }

    # ---------------------------------------------------------------- helpers

    def _name(self, kind: str, name: str) -> str:
        if not is_dns_label(name):
            raise BackendError(f"{kind} name {name!r} is not a valid DNS-1123 label (≤ 63)")
        if (kind, name) in self.names:
            raise BackendError(
                f"two {kind} resources would be named {name!r}; rename one of the resources"
            )
        self.names.add((kind, name))
        return name

    def _meta(self, name: str, labels: dict[str, str], **extra: Any) -> meta.ObjectMetaArgs:
        return meta.ObjectMetaArgs(
            name=name,
            namespace=self.namespace,
            labels={**self.config.labels, **labels},
            **extra,
        )

    def _opts(
        self, *deps: pulumi.Resource, owner: AuditNode | None = None, **kwargs: Any
    ) -> pulumi.ResourceOptions:
        # Every resource declared after the shared ones waits for them, so one that waits
        # for another resource waits for them through it: Pulumi needs only direct
        # dependencies, and shorter lists keep registration cheap.
        opts = pulumi.ResourceOptions(depends_on=[*deps] or [*self.shared], **kwargs)
        return opts if owner is None else pulumi.ResourceOptions.merge(opts, owner.child())

    def _shared(self) -> None:
        base = {"app.kubernetes.io/managed-by": "auditc", "app.kubernetes.io/part-of": "auditc"}
        if self.config.create_namespace:
            labels = {
                **self.config.labels,
                **base,
                # Every pod auditc declares meets the `restricted` Pod Security Standard.
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/warn": "restricted",
            }
            name = self._name("Namespace", self.namespace)
            # Deleting a namespace deletes everything in it: the store's claim and the
            # Secrets users created there. `pulumi destroy` (or renaming the namespace)
            # leaves it in place; delete it by hand once its results are safe.
            ns = core.Namespace(
                name,
                metadata=meta.ObjectMetaArgs(name=name, labels=labels, annotations=KEEP_ON_DELETE),
                opts=pulumi.ResourceOptions(retain_on_delete=True),
            )
            self.shared.append(ns)
        shared: list[pulumi.Resource] = []
        account = self.config.service_account
        if account.create:
            sa_name = self._name("ServiceAccount", account.name)
            shared.append(
                core.ServiceAccount(
                    sa_name,
                    metadata=self._meta(sa_name, base, annotations=account.annotations or None),
                    automount_service_account_token=False,
                    opts=self._opts(),
                )
            )
        claims = [self.config.store.pvc, self.config.model_cache.pvc]
        shared += [
            self._claim(pvc, pvc.size, base) for pvc in claims if pvc is not None and pvc.size
        ]
        if self.config.network.policies:
            shared += self._policies(base)
        # The account and the claims wait for the namespace: waiting for them is enough.
        self.shared = shared or self.shared

    def _policies(self, labels: dict[str, str]) -> list[pulumi.Resource]:
        """Default deny for Job pods, egress to the Hub and to external services where used."""
        declared = [job_policy(self.config)]
        if self._needs_hub():
            declared.append(hub_policy(self.config))
        for service in self._external_services():
            declared.append(external_policy(self.config, service))
        found: list[pulumi.Resource] = []
        for name, spec in declared:
            self._name("NetworkPolicy", name)
            found.append(
                networking.NetworkPolicy(
                    name, metadata=self._meta(name, labels), spec=spec, opts=self._opts()
                )
            )
        return found

    def _needs_hub(self) -> bool:
        for node in self.graph:
            resource = node.resource
            if isinstance(resource, Dataset) and resource.spec.huggingface is not None:
                return True
            service = (
                resource.spec.service
                if isinstance(resource, Evaluation | InferenceSession)
                else None
            )
            if service is not None and hub_model(self.graph, service) is not None:
                return True
        return False

    def _external_services(self) -> list[InferenceService]:
        found: dict[str, InferenceService] = {}
        for node in self.graph:
            if isinstance(node.resource, Evaluation) and node.resource.spec.service is not None:
                service = self.graph[node.resource.spec.service].resource
                assert isinstance(service, InferenceService)
                if service.spec.runner.kind == "external":
                    found[service.name] = service
        return list(found.values())

    def _claim(self, pvc: PvcConfig, size: str, labels: dict[str, str]) -> pulumi.Resource:
        name = self._name("PersistentVolumeClaim", pvc.claim_name)
        return core.PersistentVolumeClaim(
            name,
            metadata=self._meta(name, labels, annotations=KEEP_ON_DELETE),
            spec=core.PersistentVolumeClaimSpecArgs(
                access_modes=[pvc.access_mode],
                storage_class_name=self.config.storage_class,
                resources=core.VolumeResourceRequirementsArgs(requests={"storage": size}),
            ),
            # Deleting the claim would delete every result in it.
            opts=self._opts(retain_on_delete=True),
        )

    def _config_map(
        self, name: str, labels: dict[str, str], files: NodeFiles, owner: AuditNode
    ) -> core.ConfigMap:
        return core.ConfigMap(
            self._name("ConfigMap", name),
            metadata=self._meta(name, labels),
            data=files.data,
            immutable=True,
            opts=self._opts(owner=owner, delete_before_replace=True),
        )

    def _cache(self, service: InferenceService) -> pods.ModelCache:
        """Where the service's server finds Hub weights (see `pods.server_container`)."""
        if service.spec.runner.kind not in ("huggingface", "vllm") or service.spec.model is None:
            return "none"
        if hub_model(self.graph, service.name) is None:
            return "none"
        return "prefetched" if self.config.model_cache.pvc is not None else "download"

    def _pod(
        self,
        labels: dict[str, str],
        config_map: str,
        files: NodeFiles,
        *,
        init: list[core.ContainerArgs],
        main: list[core.ContainerArgs],
        service: InferenceService | None = None,
        restart: str = "Never",
        egress: dict[str, str] | None = None,
        model_cache: bool = False,
    ) -> core.PodTemplateSpecArgs:
        server = files.server is not None
        job = restart == "Never"
        place = pods.placement(service if server else None, self.config, job=job)
        secrets = [core.LocalObjectReferenceArgs(name=s) for s in self.config.image_pull_secrets]
        gpu = service is not None and server and service.spec.resources.accelerator is not None
        pod_labels = {
            **self.config.labels,
            **self.config.service_account.pod_labels,
            **labels,
            **(egress or {}),
        }
        if job:
            pod_labels[JOB_POD_LABEL] = "true"
        return core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(
                labels=pod_labels,
                annotations={_ANNOTATION_CONFIG: _digest(files.data)},
            ),
            spec=core.PodSpecArgs(
                service_account_name=self.config.service_account.name,
                automount_service_account_token=False,
                enable_service_links=False,
                restart_policy=restart,
                security_context=pods.pod_security_context(),
                image_pull_secrets=secrets or None,
                init_containers=init or None,
                containers=main,
                volumes=pods.volumes(
                    self.config,
                    config_map,
                    server=server,
                    shm=gpu,
                    model_cache=model_cache,
                ),
                node_selector=place.node_selector,
                tolerations=place.tolerations,
                affinity=place.affinity,
                runtime_class_name=place.runtime_class_name,
                priority_class_name=place.priority_class_name,
            ),
        )

    def _init(
        self, node: Node, *first: core.ContainerArgs, marker: str | None = None
    ) -> list[core.ContainerArgs]:
        """Init containers: in an asynchronous run, first wait for the node's inputs."""
        if not self._waits_for_inputs(node):
            return list(first)
        return [pods.wait_container(self.config, model_cache=marker is not None), *first]

    def _waits_for_inputs(self, node: Node) -> bool:
        return self.asynchronous and bool(self._upstream_workflows(node))

    def _job(
        self,
        name: str,
        labels: dict[str, str],
        template: core.PodTemplateSpecArgs,
        *,
        deadline_s: int,
        deps: list[pulumi.Resource],
        owner: AuditNode,
        shards: int | None = None,
    ) -> batch.Job:
        jobs = self.config.jobs
        scheduling = self.config.scheduling
        job_labels = dict(labels)
        annotations = dict(REPLACE_UNREADY)
        if self.asynchronous:
            annotations.update(SKIP_AWAIT)
        if scheduling.queue_name is not None:
            # Kueue admits a suspended Job by un-suspending it; the Job's deadline runs
            # only from then on.
            job_labels[QUEUE_LABEL] = scheduling.queue_name
            if scheduling.workload_priority_class is not None:
                job_labels[PRIORITY_LABEL] = scheduling.workload_priority_class
        spec = batch.JobSpecArgs(
            completion_mode="Indexed" if shards else "NonIndexed",
            completions=shards or 1,
            parallelism=shards or 1,
            backoff_limit=None if shards else jobs.backoff_limit,
            backoff_limit_per_index=jobs.backoff_limit_per_index if shards else None,
            max_failed_indexes=jobs.max_failed_indexes if shards else None,
            pod_failure_policy=_pod_failure_policy(indexed=bool(shards)),
            active_deadline_seconds=deadline_s,
            ttl_seconds_after_finished=jobs.ttl_seconds_after_finished,
            suspend=True if scheduling.queue_name is not None else None,
            template=template,
        )
        # Jobs are immutable: a changed pod template (same node, new image) replaces the Job,
        # and the old one must go first because the new one has the same name.
        timeout = deadline_s + 300
        if scheduling.queue_name is not None:
            timeout += scheduling.queue_wait_seconds
        wait = pulumi.CustomTimeouts(create=f"{timeout}s", update=f"{timeout}s")
        return batch.Job(
            self._name("Job", name),
            metadata=self._meta(name, job_labels, annotations=annotations),
            spec=spec,
            opts=self._opts(
                *deps,
                owner=owner,
                delete_before_replace=True,
                custom_timeouts=wait,
                # Kueue flips `suspend` when it admits the Job: that is not drift to undo.
                ignore_changes=["spec.suspend"] if scheduling.queue_name is not None else None,
            ),
        )

    def _deadline(self, node: Node, own_s: int) -> int:
        """A Job's `activeDeadlineSeconds`: its own time, and in an asynchronous run also
        the longest time its inputs may take, since its pods wait for them in the cluster."""
        if not self._waits_for_inputs(node):
            self.chains[node.name] = own_s
            return own_s
        before = max((self.chains.get(up, 0) for up in self._upstream_workflows(node)), default=0)
        self.chains[node.name] = before + own_s
        return before + own_s

    def _upstream_workflows(self, node: Node) -> list[str]:
        """The nearest workflows the node reads, through configuration nodes, in graph order."""
        found: set[str] = set()
        seen: set[str] = set()
        todo = list(node.upstream)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            up = self.graph[name]
            if up.is_workflow and not isinstance(up.resource, InferenceSession):
                found.add(name)
            else:
                todo.extend(up.upstream)
        position = graph_position(self.graph)
        return sorted(found, key=position.__getitem__)

    def _upstream_done(self, node: Node) -> list[pulumi.Resource]:
        """What the node's Job waits for: the done resource of each workflow it reads.

        Only the nearest ones, found through configuration nodes (a service, a model)
        and through workflows without a resource of their own: a workflow's own
        dependencies wait for theirs, so the rest is implied, and listing every
        ancestor would make the lists grow with the depth of the graph.
        """
        return [self.done[name] for name in self._upstream_workflows(node) if name in self.done]

    def _export(self, node: Node, files: NodeFiles, job: batch.Job) -> None:
        self.nodes[node.key] = {
            "id": node.id,
            "uri": files.uri,
            "job": job.metadata.apply(lambda m: m.name if m else None),
            "status": job.status.apply(_job_status),
        }

    def _files_with_wait(
        self, node: Node, files: NodeFiles, marker: str | None = None
    ) -> NodeFiles:
        if not self._waits_for_inputs(node):
            return files
        upstream = self._upstream_workflows(node)
        data = {**files.data, "wait.json": wait_json(self.graph, upstream, self.config, marker)}
        return NodeFiles(data, files.uri, server=files.server, image=files.image)

    # ------------------------------------------------------------------ nodes

    def _dataset(self, node: Node) -> None:
        assert isinstance(node.resource, Dataset)
        owner = AuditNode(node.kind, node.name, node.id)
        files = dataset_files(self.graph, node, self.config)
        name = object_name(node.name, node.id)
        labels = node_labels(node.kind, node.name, node.id, "dataset")
        config_map = self._config_map(name, labels, files, owner)
        hub = node.resource.spec.huggingface is not None
        ingest = pods.step_container(
            "ingest",
            ["runners.datasets", f"{CONFIG_DIR}/step.json"],
            self.config,
            self.config.resources.dataset,
            env=pods.hub_env(self.config) if hub else (),
        )
        template = self._pod(
            labels,
            name,
            files,
            init=[pods.fetch_container(self.config), ingest],
            main=[pods.commit_container(self.config, ephemeral=pods.scratch_request(self.config))],
            egress={HUB_LABEL: "true"} if hub else None,
        )
        deadline = self._deadline(node, self.config.jobs.dataset_deadline_seconds)
        job = self._job(name, labels, template, deadline_s=deadline, deps=[config_map], owner=owner)
        self.done[node.name] = job
        self._export(node, files, job)

    def _imported_evaluation(self, node: Node) -> None:
        files = self._files_with_wait(node, import_files(self.graph, node, self.config))
        self._step_job(
            node,
            files,
            role="import",
            module="runners.imports",
            resources=self.config.resources.dataset,
            own_deadline_s=self.config.jobs.dataset_deadline_seconds,
        )

    def _step_job(
        self,
        node: Node,
        files: NodeFiles,
        *,
        role: str,
        module: str,
        resources: ContainerResources,
        own_deadline_s: int,
    ) -> batch.Job:
        """The Job of a node that fetches its inputs, runs one runner step and commits.

        Imports and methods are built alike: a ConfigMap of the step's files, the fetch
        and step containers as init containers (after the wait for upstream outputs in an
        asynchronous run), the commit container as the main one.
        """
        owner = AuditNode(node.kind, node.name, node.id)
        name = object_name(node.name, node.id)
        labels = node_labels(node.kind, node.name, node.id, role)
        config_map = self._config_map(name, labels, files, owner)
        step = pods.step_container(
            role, [module, f"{CONFIG_DIR}/step.json"], self.config, resources
        )
        template = self._pod(
            labels,
            name,
            files,
            init=self._init(node, pods.fetch_container(self.config), step),
            main=[pods.commit_container(self.config, ephemeral=pods.scratch_request(self.config))],
        )
        deadline = self._deadline(node, own_deadline_s)
        deps = [config_map, *self._upstream_done(node)]
        job = self._job(name, labels, template, deadline_s=deadline, deps=deps, owner=owner)
        self.done[node.name] = job
        self._export(node, files, job)
        return job

    def _prefetch(self, model_name: str) -> pulumi.Resource:
        """The model's prefetch Job (one per Model, whichever services serve it)."""
        if model_name in self.prefetched:
            return self.prefetched[model_name]
        node = self.graph[model_name]
        assert isinstance(node.resource, Model)
        owner = AuditNode(node.kind, node.name, node.id)
        files = prefetch_files(self.graph, node, self.config)
        name = object_name(node.name, node.id, "prefetch")
        labels = node_labels(node.kind, node.name, node.id, "prefetch")
        config_map = self._config_map(name, labels, files, owner)
        template = self._pod(
            labels,
            name,
            files,
            init=[],
            main=[pods.prefetch_container(self.config, pods.scratch_request(self.config))],
            egress={HUB_LABEL: "true"},
            model_cache=True,
        )
        job = self._job(
            name,
            labels,
            template,
            deadline_s=self.config.jobs.prefetch_deadline_seconds,
            deps=[config_map],
            owner=owner,
        )
        self.prefetched[model_name] = job
        return job

    def _evaluation(self, node: Node) -> None:
        evaluation = node.resource
        assert isinstance(evaluation, Evaluation)
        spec = evaluation.spec
        assert spec.service is not None
        service = self.graph[spec.service].resource
        assert isinstance(service, InferenceService)
        owner = AuditNode(node.kind, node.name, node.id)
        cache = self._cache(service)
        prefetch: list[pulumi.Resource] = []
        marker = None
        if cache == "prefetched":
            model = self.graph[hub_model(self.graph, service.name) or ""]
            prefetch.append(self._prefetch(model.name))
            marker = prefetch_marker(self.config, model.name, model.id)
        files = self._files_with_wait(node, evaluation_files(self.graph, node, self.config), marker)
        name = object_name(node.name, node.id, reserve=indexed_job_reserve(spec.shards))
        labels = node_labels(node.kind, node.name, node.id, "evaluation")
        config_map = self._config_map(name, labels, files, owner)
        deps: list[pulumi.Resource] = [config_map, *prefetch]
        init = self._init(node, pods.fetch_container(self.config), marker=marker)
        scratch = pods.scratch_request(
            self.config, server=files.server is not None, cache_volume=cache == "download"
        )
        if files.server is not None:
            init.append(
                pods.server_container(
                    files.server,
                    service,
                    self.config,
                    sidecar=True,
                    ready_timeout_s=spec.timeouts.ready_s(service.spec.runner.kind),
                    cache=cache,
                )
            )
        egress = {}
        if cache == "download":
            egress[HUB_LABEL] = "true"
        if service.spec.runner.kind == "external":
            egress[EXTERNAL_LABEL] = service.name
        template = self._pod(
            labels,
            name,
            files,
            init=init,
            main=[self._client(node, service, scratch)],
            service=service,
            egress=egress,
            model_cache=cache != "none",
        )
        own = (
            int(spec.timeouts.total + spec.timeouts.ready_s(service.spec.runner.kind))
            + self.config.jobs.extra_deadline_seconds
        )
        if marker is not None and self.asynchronous:  # it may wait for the prefetch too
            own += self.config.jobs.prefetch_deadline_seconds
        deadline = self._deadline(node, own)
        deps += self._upstream_done(node)
        job = self._job(
            name,
            labels,
            template,
            deadline_s=deadline,
            deps=deps,
            owner=owner,
            shards=spec.shards,
        )
        self.done[node.name] = self._commit_job(node, files, name, job, owner)
        self._export(node, files, job)

    def _client(self, node: Node, service: InferenceService, scratch: str) -> core.ContainerArgs:
        assert isinstance(node.resource, Evaluation)
        shards = node.resource.spec.shards
        # The Job controller sets this annotation on each pod; declaring the variable
        # ourselves lets the args below expand it.
        env = [
            core.EnvVarArgs(
                name="JOB_COMPLETION_INDEX",
                value_from=core.EnvVarSourceArgs(
                    field_ref=core.ObjectFieldSelectorArgs(
                        field_path="metadata.annotations['batch.kubernetes.io/job-completion-index']"
                    )
                ),
            )
        ]
        runner = service.spec.runner
        if runner.kind == "external" and runner.api_key_env is not None:
            env.append(
                pods.secret_env(
                    runner.api_key_env, self.config.secrets.api_keys, runner.api_key_env
                )
            )
        return pods.step_container(
            CLIENT_CONTAINER,
            [
                "runners.evaluation",
                f"{CONFIG_DIR}/step.json",
                "--shard",
                f"$(JOB_COMPLETION_INDEX)/{shards}",
            ],
            self.config,
            self.config.resources.client,
            env=env,
            ephemeral=scratch,
        )

    def _commit_job(
        self, node: Node, files: NodeFiles, config_map: str, job: batch.Job, owner: AuditNode
    ) -> batch.Job:
        """After every shard succeeded: check the outputs and write the manifest."""
        name = object_name(node.name, node.id, "commit")
        labels = node_labels(node.kind, node.name, node.id, "commit")
        init = []
        if self.asynchronous:  # its Job is created at once too: wait for every shard
            init.append(pods.wait_container(self.config))
        template = self._pod(
            labels,
            config_map,
            NodeFiles(files.data, files.uri),
            init=init,
            main=[
                pods.commit_container(
                    self.config, state=False, ephemeral=pods.scratch_request(self.config)
                )
            ],
        )
        deadline = COMMIT_DEADLINE_S + (self.chains[node.name] if self.asynchronous else 0)
        return self._job(name, labels, template, deadline_s=deadline, deps=[job], owner=owner)

    def _method(self, node: Node) -> None:
        method = node.resource
        assert isinstance(method, Method)
        files = self._files_with_wait(node, method_files(self.graph, node, self.config))
        job = self._step_job(
            node,
            files,
            role="method",
            module="runners.methods",
            resources=self.config.resources.method,
            own_deadline_s=int(method.spec.timeout) + self.config.jobs.extra_deadline_seconds,
        )
        if method.spec.output.kind == "SafetyCase":
            self.safety_cases[node.key] = safety_case_output(
                files.uri, node.id, job, read_store=self.read_store
            )

    def _session(self, node: Node) -> None:
        session = node.resource
        assert isinstance(session, InferenceSession)
        service = self.graph[session.spec.service].resource
        assert isinstance(service, InferenceService)
        files = session_files(self.graph, service.name, self.config)
        if files.server is None:
            pulumi.log.warn(
                f"InferenceSession/{node.name}: service {service.name!r} is external; "
                "there is nothing to deploy"
            )
            return
        owner = AuditNode(node.kind, node.name, node.id)
        name = object_name(node.name, node.id)
        labels = node_labels(node.kind, node.name, node.id, "inference")
        config_map = self._config_map(name, labels, files, owner)
        cache = self._cache(service)
        deps: list[pulumi.Resource] = [config_map]
        if cache == "prefetched":
            model = hub_model(self.graph, service.name)
            assert model is not None
            deps.append(self._prefetch(model))
        server = pods.server_container(
            files.server,
            service,
            self.config,
            sidecar=False,
            ready_timeout_s=600,
            cache=cache,
            ephemeral=pods.scratch_request(
                self.config, server=True, cache_volume=cache == "download"
            ),
        )
        template = self._pod(
            labels,
            name,
            files,
            init=[pods.fetch_container(self.config)],
            main=[server],
            service=service,
            restart="Always",
            model_cache=cache != "none",
        )
        selector = {k: labels[k] for k in ("auditc.io/name", "auditc.io/id")}
        deployment = apps.Deployment(
            self._name("Deployment", name),
            metadata=self._meta(name, labels),
            spec=apps.DeploymentSpecArgs(
                replicas=session.spec.replicas,
                selector=meta.LabelSelectorArgs(match_labels=selector),
                template=template,
            ),
            opts=self._opts(*deps, owner=owner),
        )
        svc_name = service_name(name)
        core.Service(
            self._name("Service", svc_name),
            metadata=self._meta(svc_name, labels),
            spec=core.ServiceSpecArgs(
                selector=selector,
                ports=[core.ServicePortArgs(name="http", port=80, target_port="http")],
            ),
            opts=self._opts(deployment, owner=owner),
        )
        self._network_policy(name, labels, selector, files.server.port, owner)
        self.nodes[node.key] = {
            "id": node.id,
            "uri": f"http://{svc_name}.{self.namespace}.svc.cluster.local",
            "deployment": name,
            "status": deployment.status.apply(_deployment_status),
        }

    def _network_policy(
        self,
        name: str,
        labels: dict[str, str],
        selector: dict[str, str],
        port: int,
        owner: AuditNode,
    ) -> None:
        """Only evaluation pods may reach a session's servers."""
        peer = networking.NetworkPolicyPeerArgs(
            pod_selector=meta.LabelSelectorArgs(match_labels={"auditc.io/role": "evaluation"})
        )
        networking.NetworkPolicy(
            self._name("NetworkPolicy", name),
            metadata=self._meta(name, labels),
            spec=networking.NetworkPolicySpecArgs(
                pod_selector=meta.LabelSelectorArgs(match_labels=selector),
                policy_types=["Ingress"],
                ingress=[
                    networking.NetworkPolicyIngressRuleArgs(
                        from_=[peer],
                        ports=[networking.NetworkPolicyPortArgs(port=port, protocol="TCP")],
                    )
                ],
            ),
            opts=self._opts(owner=owner),
        )


def _pod_failure_policy(*, indexed: bool) -> batch.PodFailurePolicyArgs:
    """What a failed pod does to its Job (rules apply in order, first match wins).

    - exit 2 in any container (an invalid config, or an input missing from the store or
      not matching its hash) fails the Job at once: no retry can fix it;
    - in an evaluation, exit 4 of the client (its server was not ready within
      `timeouts.ready`) fails that shard at once: the kubelet already restarted the
      server for the whole ready window, and another try would hold a GPU as long
      again; the other shards go on, and the Job fails when they are done;
    - preemption, eviction or a drained node (`DisruptionTarget`) is not counted;
    - any other failure counts against `backoffLimit` / `backoffLimitPerIndex`.
    """
    rules = [
        batch.PodFailurePolicyRuleArgs(
            action="FailJob",
            on_exit_codes=batch.PodFailurePolicyOnExitCodesRequirementArgs(
                operator="In", values=[CONFIG_EXIT_CODE]
            ),
        )
    ]
    if indexed:  # FailIndex needs backoffLimitPerIndex, which only evaluations set
        rules.append(
            batch.PodFailurePolicyRuleArgs(
                action="FailIndex",
                on_exit_codes=batch.PodFailurePolicyOnExitCodesRequirementArgs(
                    container_name=CLIENT_CONTAINER, operator="In", values=[NOT_READY_EXIT_CODE]
                ),
            )
        )
    rules.append(
        batch.PodFailurePolicyRuleArgs(
            action="Ignore",
            on_pod_conditions=[
                batch.PodFailurePolicyOnPodConditionsPatternArgs(
                    type="DisruptionTarget", status="True"
                )
            ],
        )
    )
    return batch.PodFailurePolicyArgs(rules=rules)


def _digest(data: dict[str, str]) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _job_status(status: Any) -> str:
    """`succeeded`, `failed`, `running` or `pending`, from a Job's status."""
    if status is None:
        return "pending"
    conditions = getattr(status, "conditions", None) or []
    for condition in conditions:
        if getattr(condition, "status", None) == "True" and condition.type in (
            "Complete",
            "Failed",
        ):
            return "succeeded" if condition.type == "Complete" else "failed"
    return "running" if getattr(status, "active", None) else "pending"


def _deployment_status(status: Any) -> str:
    """`ready` when every replica is ready, else `starting`."""
    if status is None:
        return "starting"
    ready = getattr(status, "ready_replicas", None) or 0
    wanted = getattr(status, "replicas", None) or 0
    return "ready" if wanted and ready >= wanted else "starting"
