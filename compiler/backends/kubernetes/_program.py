"""The Pulumi program: a resolved `Graph` → typed `pulumi_kubernetes` resources.

`deploy(graph, config)` declares, in one namespace:

- a Namespace (or uses an existing one), a ServiceAccount without API access, and the
  claims the stack asks for (store volume, model cache);
- per Dataset: a ConfigMap and an ingestion Job;
- per Evaluation: a ConfigMap, an Indexed Job (one pod per shard: fetch inputs → the
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
from schemas import BackendError, Dataset, Evaluation, InferenceService, InferenceSession, Method

from . import _pods as pods
from ._checks import pod_warnings
from ._config import KubernetesConfig, PvcConfig
from ._configs import (
    CONFIG_DIR,
    NodeFiles,
    dataset_files,
    evaluation_files,
    graph_position,
    method_files,
    session_files,
)
from ._names import indexed_job_reserve, is_dns_label, node_labels, object_name, service_name

if TYPE_CHECKING:
    from ..._resolve import Graph, Node

__all__ = ["CONFIG_EXIT_CODE", "NOT_READY_EXIT_CODE", "SERVICE_ACCOUNT", "deploy"]

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT = "auditc-runner"
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
EVALUATION_INGRESS_POLICY = "auditc-evaluations-deny-ingress"


def deploy(graph: Graph, config: KubernetesConfig) -> dict[str, Any]:
    """Declare the graph's Kubernetes resources and export each node's URI and Job status.

    Must run inside a Pulumi program (the engine, or `pulumi.runtime.test` with mocks).

    Returns:
        The stack outputs, as exported.

    Raises:
        BackendError: two resources would get the same name, or a name is not a valid
            Kubernetes name.
    """
    for message in pod_warnings(graph, config):
        pulumi.log.warn(message)
    outputs = _Program(graph, config).build()
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


@dataclass
class _Program:
    graph: Graph
    config: KubernetesConfig
    shared: list[pulumi.Resource] = field(default_factory=list)
    """ServiceAccount and claims (which wait for the Namespace): everything else waits for them."""
    done: dict[str, pulumi.Resource] = field(default_factory=dict)
    """Node name → the resource whose completion means its outputs are in the store."""
    names: set[tuple[str, str]] = field(default_factory=set)
    nodes: dict[str, Any] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.config.namespace

    def build(self) -> dict[str, Any]:
        self._shared()
        for node in self.graph:
            resource = node.resource
            if isinstance(resource, Dataset):
                self._dataset(node)
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

    def _opts(self, *deps: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
        # Every resource declared after the shared ones waits for them, so one that waits
        # for another resource waits for them through it: Pulumi needs only direct
        # dependencies, and shorter lists keep registration cheap.
        return pulumi.ResourceOptions(depends_on=[*deps] or [*self.shared], **kwargs)

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
        sa_name = self._name("ServiceAccount", SERVICE_ACCOUNT)
        account = core.ServiceAccount(
            sa_name,
            metadata=self._meta(sa_name, base),
            automount_service_account_token=False,
            opts=self._opts(),
        )
        claims = [self.config.store.pvc, self.config.model_cache.pvc]
        created = [
            self._claim(pvc, pvc.size, base) for pvc in claims if pvc is not None and pvc.size
        ]
        policy = self._evaluation_ingress_policy(base)
        # The account and the claims wait for the namespace: waiting for them is enough.
        self.shared = [account, *created, policy]

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

    def _evaluation_ingress_policy(self, labels: dict[str, str]) -> pulumi.Resource:
        """No ingress at all to evaluation pods: their servers listen on the pod network
        only for the kubelet's probes (which NetworkPolicies never block), and the client
        reaches its server over loopback."""
        name = self._name("NetworkPolicy", EVALUATION_INGRESS_POLICY)
        return networking.NetworkPolicy(
            name,
            metadata=self._meta(name, labels),
            spec=networking.NetworkPolicySpecArgs(
                pod_selector=meta.LabelSelectorArgs(match_labels={"auditc.io/role": "evaluation"}),
                policy_types=["Ingress"],
            ),
            opts=self._opts(),
        )

    def _config_map(self, name: str, labels: dict[str, str], files: NodeFiles) -> core.ConfigMap:
        return core.ConfigMap(
            self._name("ConfigMap", name),
            metadata=self._meta(name, labels),
            data=files.data,
            immutable=True,
            opts=self._opts(delete_before_replace=True),
        )

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
    ) -> core.PodTemplateSpecArgs:
        server = files.server is not None
        selector, tolerations = pods.placement(service if server else None, self.config)
        secrets = [core.LocalObjectReferenceArgs(name=s) for s in self.config.image_pull_secrets]
        return core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(
                labels={**self.config.labels, **labels},
                annotations={_ANNOTATION_CONFIG: _digest(files.data)},
            ),
            spec=core.PodSpecArgs(
                service_account_name=SERVICE_ACCOUNT,
                automount_service_account_token=False,
                enable_service_links=False,
                restart_policy=restart,
                security_context=pods.pod_security_context(),
                image_pull_secrets=secrets or None,
                init_containers=init or None,
                containers=main,
                volumes=pods.volumes(self.config, config_map, server=server),
                node_selector=selector,
                tolerations=tolerations,
            ),
        )

    def _job(
        self,
        name: str,
        labels: dict[str, str],
        template: core.PodTemplateSpecArgs,
        *,
        deadline_s: int,
        deps: list[pulumi.Resource],
        shards: int | None = None,
    ) -> batch.Job:
        jobs = self.config.jobs
        # Scheduling settings that apply to Jobs only (a queue label and `suspend` for
        # Kueue, priority and runtime classes) belong here and in `_pod`, not in
        # `config.labels`, which reaches every object.
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
            template=template,
        )
        # Jobs are immutable: a changed pod template (same node, new image) replaces the Job,
        # and the old one must go first because the new one has the same name.
        wait = pulumi.CustomTimeouts(create=f"{deadline_s + 300}s", update=f"{deadline_s + 300}s")
        return batch.Job(
            self._name("Job", name),
            metadata=self._meta(name, labels, annotations=REPLACE_UNREADY),
            spec=spec,
            opts=self._opts(*deps, delete_before_replace=True, custom_timeouts=wait),
        )

    def _upstream_done(self, node: Node) -> list[pulumi.Resource]:
        """What the node's Job waits for: the done resource of each workflow it reads.

        Only the nearest ones, found through configuration nodes (a service, a model)
        and through workflows without a resource of their own: a workflow's own
        dependencies wait for theirs, so the rest is implied, and listing every
        ancestor would make the lists grow with the depth of the graph.
        """
        found: dict[str, pulumi.Resource] = {}
        seen: set[str] = set()
        todo = list(node.upstream)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            up = self.graph[name]
            if up.is_workflow and name in self.done:
                found[name] = self.done[name]
            else:
                todo.extend(up.upstream)
        position = graph_position(self.graph)
        return [found[name] for name in sorted(found, key=position.__getitem__)]

    def _export(self, node: Node, files: NodeFiles, job: batch.Job) -> None:
        self.nodes[node.key] = {
            "id": node.id,
            "uri": files.uri,
            "job": job.metadata.apply(lambda m: m.name if m else None),
            "status": job.status.apply(_job_status),
        }

    # ------------------------------------------------------------------ nodes

    def _dataset(self, node: Node) -> None:
        assert isinstance(node.resource, Dataset)
        files = dataset_files(self.graph, node, self.config)
        name = object_name(node.name, node.id)
        labels = node_labels(node.kind, node.name, node.id, "dataset")
        config_map = self._config_map(name, labels, files)
        hub = node.resource.spec.huggingface is not None
        ingest = pods.step_container(
            "ingest",
            ["runners.datasets", f"{CONFIG_DIR}/step.json"],
            self.config,
            self.config.resources.dataset,
            env=pods.hf_token_env(self.config) if hub else (),
        )
        template = self._pod(
            labels,
            name,
            files,
            init=[pods.fetch_container(self.config), ingest],
            main=[pods.commit_container(self.config)],
        )
        deadline = self.config.jobs.dataset_deadline_seconds
        job = self._job(name, labels, template, deadline_s=deadline, deps=[config_map])
        self.done[node.name] = job
        self._export(node, files, job)

    def _evaluation(self, node: Node) -> None:
        evaluation = node.resource
        assert isinstance(evaluation, Evaluation)
        spec = evaluation.spec
        service = self.graph[spec.service].resource
        assert isinstance(service, InferenceService)
        files = evaluation_files(self.graph, node, self.config)
        name = object_name(node.name, node.id, reserve=indexed_job_reserve(spec.shards))
        labels = node_labels(node.kind, node.name, node.id, "evaluation")
        config_map = self._config_map(name, labels, files)
        init = [pods.fetch_container(self.config)]
        if files.server is not None:
            init.append(
                pods.server_container(
                    files.server,
                    service,
                    self.config,
                    sidecar=True,
                    ready_timeout_s=spec.timeouts.ready,
                )
            )
        template = self._pod(
            labels, name, files, init=init, main=[self._client(node, service)], service=service
        )
        deadline = (
            int(spec.timeouts.total + spec.timeouts.ready) + self.config.jobs.extra_deadline_seconds
        )
        deps = [config_map, *self._upstream_done(node)]
        job = self._job(name, labels, template, deadline_s=deadline, deps=deps, shards=spec.shards)
        self.done[node.name] = self._commit_job(node, files, name, job)
        self._export(node, files, job)

    def _client(self, node: Node, service: InferenceService) -> core.ContainerArgs:
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
        )

    def _commit_job(
        self, node: Node, files: NodeFiles, config_map: str, job: batch.Job
    ) -> batch.Job:
        """After every shard succeeded: check the outputs and write the manifest."""
        name = object_name(node.name, node.id, "commit")
        labels = node_labels(node.kind, node.name, node.id, "commit")
        template = self._pod(
            labels,
            config_map,
            NodeFiles(files.data, files.uri),
            init=[],
            main=[pods.commit_container(self.config, state=False)],
        )
        return self._job(name, labels, template, deadline_s=COMMIT_DEADLINE_S, deps=[job])

    def _method(self, node: Node) -> None:
        method = node.resource
        assert isinstance(method, Method)
        files = method_files(self.graph, node, self.config)
        name = object_name(node.name, node.id)
        labels = node_labels(node.kind, node.name, node.id, "method")
        config_map = self._config_map(name, labels, files)
        step = pods.step_container(
            "method",
            ["runners.methods", f"{CONFIG_DIR}/step.json"],
            self.config,
            self.config.resources.method,
        )
        template = self._pod(
            labels,
            name,
            files,
            init=[pods.fetch_container(self.config), step],
            main=[pods.commit_container(self.config)],
        )
        deadline = int(method.spec.timeout) + self.config.jobs.extra_deadline_seconds
        deps = [config_map, *self._upstream_done(node)]
        job = self._job(name, labels, template, deadline_s=deadline, deps=deps)
        self.done[node.name] = job
        self._export(node, files, job)

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
        name = object_name(node.name, node.id)
        labels = node_labels(node.kind, node.name, node.id, "inference")
        config_map = self._config_map(name, labels, files)
        server = pods.server_container(
            files.server, service, self.config, sidecar=False, ready_timeout_s=600
        )
        template = self._pod(
            labels,
            name,
            files,
            init=[pods.fetch_container(self.config)],
            main=[server],
            service=service,
            restart="Always",
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
            opts=self._opts(config_map),
        )
        svc_name = service_name(name)
        core.Service(
            self._name("Service", svc_name),
            metadata=self._meta(svc_name, labels),
            spec=core.ServiceSpecArgs(
                selector=selector,
                ports=[core.ServicePortArgs(name="http", port=80, target_port="http")],
            ),
            opts=self._opts(deployment),
        )
        self._network_policy(name, labels, selector, files.server.port)
        self.nodes[node.key] = {
            "id": node.id,
            "uri": f"http://{svc_name}.{self.namespace}.svc.cluster.local",
            "deployment": name,
            "status": deployment.status.apply(_deployment_status),
        }

    def _network_policy(
        self, name: str, labels: dict[str, str], selector: dict[str, str], port: int
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
            opts=self._opts(),
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
