"""Stack configuration of the Kubernetes backend: where and how the graph runs on a cluster.

The same model is read from two places:

- by the Pulumi program, from the stack's config (`pulumi.Config("auditc")`);
- by `auditc compile --target kubernetes --stack NAME`, from `stacks/Pulumi.<NAME>.yaml`.

Keys are camelCase and namespaced `auditc:` in the stack file, as Pulumi requires
(`auditc:namespace: audits`). Only *names* of Secrets appear here, never values.
Importing this module does not import pulumi.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from schemas import (
    IMAGE_REFERENCE_PATTERN,
    LABEL_VALUE_PATTERN,
    Issue,
    Quantity,
    SpecValidationError,
    UsageError,
    format_loc,
)

__all__ = [
    "CONFIG_NAMESPACE",
    "DEFAULT_RUNNER_IMAGE",
    "BudgetConfig",
    "ContainerResources",
    "CpuPlacement",
    "EgressRule",
    "GpuConfig",
    "ImagesConfig",
    "JobsConfig",
    "KubernetesConfig",
    "ModelCacheConfig",
    "NetworkConfig",
    "PvcConfig",
    "ResourcesConfig",
    "SecretKeyRef",
    "SchedulingConfig",
    "ScratchConfig",
    "SecretsConfig",
    "ServiceAccountConfig",
    "StoreConfig",
    "Toleration",
    "load_stack_config",
    "load_stack_text",
    "stack_file",
    "stack_values",
]

CONFIG_NAMESPACE = "auditc"
"""The Pulumi project name, and so the prefix of our keys in stack files (`auditc:store`)."""
DEFAULT_RUNNER_IMAGE = "ghcr.io/auditc/auditc-runner:0.1.0"
"""Built from `runners/images/Dockerfile`; pin a digest in real stacks."""
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


class _Config(BaseModel):
    """camelCase in stack files, snake_case in Python; unknown keys are errors."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


class PvcConfig(_Config):
    """A PersistentVolumeClaim: an existing one by name, or one the program creates (`size`)."""

    claim_name: str = Field(pattern=_DNS_SUBDOMAIN)
    size: Quantity | None = None
    """If set, the program creates the claim with this size (else it must exist)."""
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"] = "ReadWriteMany"
    """Parallel shards write at once: use ReadWriteMany unless every Job runs on one node."""


class StoreConfig(_Config):
    """Where outputs go: an S3-compatible bucket (`uri`) or a volume (`pvc`). Exactly one."""

    uri: str | None = Field(default=None, pattern=r"^[a-z0-9]+://\S+$")
    """`s3://bucket/prefix?endpoint_override=host:port&scheme=http` (any pyarrow filesystem URI)."""
    credentials_secret: str | None = Field(default=None, pattern=_DNS_SUBDOMAIN)
    """A Secret whose keys become environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, …)."""
    pvc: PvcConfig | None = None
    mount_path: str = Field(default="/store", pattern=r"^/[A-Za-z0-9/_.-]*$")
    """Where the volume is mounted in every pod (with `pvc`)."""

    @model_validator(mode="after")
    def _one(self) -> StoreConfig:
        if (self.uri is None) == (self.pvc is None):
            raise ValueError("set exactly one of 'uri' (object storage) and 'pvc' (a volume)")
        if self.pvc is not None and self.credentials_secret is not None:
            raise ValueError("'credentialsSecret' is for object storage ('uri'), not for 'pvc'")
        return self

    @property
    def root(self) -> str:
        """The store URI as pods see it: the object-store URI, or the volume's mount path."""
        return self.uri if self.uri is not None else self.mount_path


class ImagesConfig(_Config):
    """Container images. Pin them by digest (`repo@sha256:…`) in production stacks."""

    runner: str = Field(default=DEFAULT_RUNNER_IMAGE, pattern=IMAGE_REFERENCE_PATTERN)
    """auditc's runner image: python/huggingface servers, evaluation client, methods,
    ingestion. `repo:tag`, or by digest `repo@sha256:…` (`compile` warns on a tag)."""
    vllm: str | None = Field(default=None, pattern=IMAGE_REFERENCE_PATTERN)
    """Overrides every `vllm` service's `runner.image` (`repo@sha256:…` pins it)."""
    require_digests: bool = False
    """Every image must be named by digest: a tag is an error of `compile` and
    `pulumi preview` instead of a warning (`compile --require-digests` does the same)."""
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    runner_packages: list[str] = Field(default_factory=list)
    """Pip requirements built into the runner image (`--build-arg EXTRA_PACKAGES`), such as
    `alt-profanity-check==1.9.1`; `compile` warns about a python-runner Model whose
    package is not among them."""
    runner_extras: list[Literal["huggingface"]] = Field(default_factory=list)
    """auditc extras built into the runner image (`--build-arg EXTRAS`); `huggingface`
    runners need `huggingface`."""

    @field_validator("runner_packages")
    @classmethod
    def _requirements(cls, value: list[str]) -> list[str]:
        from packaging.requirements import InvalidRequirement, Requirement

        for item in value:
            try:
                Requirement(item)
            except InvalidRequirement as exc:
                raise ValueError(f"{item!r} is not a pip requirement: {exc}") from None
        return value


class Toleration(_Config):
    """A pod toleration (Kubernetes `core/v1 Toleration`)."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class GpuConfig(_Config):
    """How pods that ask for a GPU are placed; pods without one get none of this."""

    node_selector: dict[str, str] = Field(default_factory=dict)
    """Labels of GPU nodes (`nvidia.com/gpu.present: "true"`)."""
    tolerations: list[Toleration] = Field(
        default_factory=lambda: [
            Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
        ]
    )
    """Taints GPU nodes carry; the default tolerates the usual `nvidia.com/gpu` taint."""
    product_label: str = "nvidia.com/gpu.product"
    """Node label matched against `resources.accelerator.product` (GPU feature discovery)."""


class ModelCacheConfig(_Config):
    """Where servers cache model weights (`HF_HOME`); an emptyDir unless a claim is named."""

    pvc: PvcConfig | None = None
    size_limit: Quantity = "50Gi"
    """Size limit of the emptyDir used when there is no claim."""
    mount_path: str = "/model-cache"


class SecretKeyRef(_Config):
    """One key of a Secret."""

    name: str = Field(pattern=_DNS_SUBDOMAIN)
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$")
    optional: bool = True
    """Pods still start when the Secret is missing (public models need no token)."""


class SecretsConfig(_Config):
    """References to Secrets (created outside auditc); no value ever appears in a manifest."""

    hf_token: SecretKeyRef | None = SecretKeyRef(name="hf-token", key="token")
    """Hugging Face token for gated models and datasets (`HF_TOKEN`)."""
    api_keys: str = Field(default="auditc-api-keys", pattern=_DNS_SUBDOMAIN)
    """Secret holding external services' API keys, one key per `runner.api_key_env` name."""


class ContainerResources(_Config):
    """Requests and limits of one container."""

    cpu: Quantity
    memory: Quantity
    cpu_limit: Quantity | None = None
    """Defaults to `cpu`."""
    memory_limit: Quantity | None = None
    """Defaults to `memory`."""


class ResourcesConfig(_Config):
    """Compute of auditc's own containers (servers take theirs from the InferenceService)."""

    client: ContainerResources = ContainerResources(cpu="500m", memory="1Gi", cpu_limit="2")
    method: ContainerResources = ContainerResources(cpu="1", memory="4Gi", cpu_limit="2")
    dataset: ContainerResources = ContainerResources(cpu="500m", memory="2Gi", cpu_limit="2")
    fetch: ContainerResources = ContainerResources(cpu="100m", memory="256Mi", cpu_limit="1")
    """Input download/verification and manifest commit steps."""


class JobsConfig(_Config):
    """Retry and clean-up policy of every Job."""

    backoff_limit: int = Field(default=2, ge=0, le=100)
    """Retries of dataset, method and commit Jobs."""
    backoff_limit_per_index: int = Field(default=2, ge=0, le=100)
    """Retries of each evaluation shard."""
    max_failed_indexes: int | None = Field(default=None, ge=0)
    """Stop an evaluation once this many shards have failed (default: let all run)."""
    ttl_seconds_after_finished: int = Field(default=7 * 24 * 3600, ge=0)
    """Finished Jobs are deleted after this; the store keeps the results."""
    extra_deadline_seconds: int = Field(default=900, ge=0)
    """Added to each timeout for image pulls and input downloads."""
    dataset_deadline_seconds: int = Field(default=3600, ge=1)
    """How long a dataset ingestion Job may run (Datasets have no timeout of their own)."""
    wait_for_completion: bool = True
    """`pulumi up` waits for each Job to complete, in dependency order. False: it returns
    once the Jobs are submitted (`pulumi.com/skipAwait`); each pod first waits in the
    cluster for its inputs to be committed to the store, and `auditc status` / `auditc
    wait --stack NAME` follow the run."""
    prefetch_deadline_seconds: int = Field(default=7200, ge=1)
    """How long a model prefetch Job may run (downloading the weights once)."""


class CpuPlacement(_Config):
    """Where Job pods without a GPU go (dataset, method, commit, prefetch, CPU evaluations)."""

    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    runtime_class_name: str | None = Field(default=None, pattern=_DNS_SUBDOMAIN)


class SchedulingConfig(_Config):
    """How auditc's Jobs share a cluster: a Kueue queue, priorities, runtime and node placement.

    Applied to Jobs only (never to sessions' Deployments), unlike `labels`.

    Example:

    ```yaml
    auditc:scheduling:
      queueName: team-safety               # Kueue LocalQueue: Jobs are created suspended
      workloadPriorityClass: audits-low    # Kueue WorkloadPriorityClass
      priorityClassName: batch-low
      runtimeClassName: nvidia             # pods that ask for a GPU
      gpuProducts: [NVIDIA-H100-80GB-HBM3, NVIDIA-A100-SXM4-80GB]
      cpu: {nodeSelector: {pool: cpu}}
    ```
    """

    queue_name: str | None = Field(default=None, pattern=_DNS_SUBDOMAIN)
    """A Kueue LocalQueue of the namespace: each Job gets the `kueue.x-k8s.io/queue-name`
    label and is created suspended; Kueue starts it once the queue admits it (a suspended
    Job's `activeDeadlineSeconds` does not run while it waits)."""
    workload_priority_class: str | None = Field(default=None, pattern=_DNS_SUBDOMAIN)
    """A Kueue WorkloadPriorityClass (`kueue.x-k8s.io/priority-class`); needs `queueName`."""
    queue_wait_seconds: int = Field(default=6 * 3600, ge=0)
    """How much longer `pulumi up` waits for a queued Job than its deadline (time in the queue)."""
    priority_class_name: str | None = Field(default=None, pattern=_DNS_SUBDOMAIN)
    """A PriorityClass of every Job pod (`spec.priorityClassName`)."""
    runtime_class_name: str | None = Field(default=None, pattern=_DNS_SUBDOMAIN)
    """RuntimeClass of pods that ask for a GPU (`nvidia` with the GPU operator's runtime)."""
    gpu_products: list[str] = Field(default_factory=list)
    """GPU products any of which will do (`H100 or A100`): a required node affinity on
    `gpu.productLabel` for GPU pods whose service pins no `accelerator.product`."""
    cpu: CpuPlacement = CpuPlacement()
    """Node selector, tolerations and runtime class of Job pods without a GPU."""

    @field_validator("gpu_products")
    @classmethod
    def _label_values(cls, value: list[str]) -> list[str]:
        import re

        for item in value:
            if len(item) > 63 or not re.fullmatch(LABEL_VALUE_PATTERN, item):
                raise ValueError(f"{item!r} is not a Kubernetes label value")
        return value

    @model_validator(mode="after")
    def _priority_needs_queue(self) -> SchedulingConfig:
        if self.workload_priority_class is not None and self.queue_name is None:
            raise ValueError("'workloadPriorityClass' is Kueue's: set 'queueName' too")
        return self


class ServiceAccountConfig(_Config):
    """The identity of auditc's pods: workload identity instead of static store keys.

    IRSA: `annotations: {eks.amazonaws.com/role-arn: …}`; GKE: `{iam.gke.io/gcp-service-account: …}`;
    Azure: `annotations: {azure.workload.identity/client-id: …}` and
    `podLabels: {azure.workload.identity/use: "true"}`; EKS Pod Identity: the name only.
    """

    name: str = Field(default="auditc-runner", pattern=_DNS_SUBDOMAIN)
    create: bool = True
    """Create the account (with `annotations`), or use an existing one of this name."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """On the ServiceAccount auditc creates (a role ARN, a cloud service account)."""
    pod_labels: dict[str, str] = Field(default_factory=dict)
    """On every pod (Azure's `azure.workload.identity/use: "true"`)."""

    @model_validator(mode="after")
    def _annotations_need_create(self) -> ServiceAccountConfig:
        if self.annotations and not self.create:
            raise ValueError(
                "'annotations' go on an account auditc creates; with 'create: false' "
                "annotate the existing account yourself"
            )
        return self


class EgressRule(_Config):
    """Where pods may connect: an IP block or in-cluster pods, on some ports (all without `to`)."""

    cidr: str | None = None
    """An IP block (`10.0.0.0/8`, `0.0.0.0/0`)."""
    except_: list[str] = Field(default_factory=list, alias="except")
    """Blocks within `cidr` that stay closed."""
    namespace: str | None = Field(default=None, pattern=_DNS_LABEL)
    """Pods of this namespace (with `podLabels`, only those)."""
    pod_labels: dict[str, str] = Field(default_factory=dict)
    ports: list[int] = Field(default_factory=list)
    """TCP ports (UDP too for 53); empty: every port."""
    protocols: list[Literal["TCP", "UDP"]] = Field(default_factory=lambda: ["TCP"])  # type: ignore[arg-type]

    @field_validator("cidr", "except_")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        import ipaddress

        for item in [value] if isinstance(value, str) else value or []:
            try:
                ipaddress.ip_network(item)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP block: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_peer(self) -> EgressRule:
        if self.cidr is not None and (self.namespace is not None or self.pod_labels):
            raise ValueError("an egress rule is an IP block ('cidr') or pods, not both")
        if self.except_ and self.cidr is None:
            raise ValueError("'except' narrows a 'cidr'")
        return self


_PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]


def _public_https() -> list[EgressRule]:
    return [EgressRule.model_validate({"cidr": "0.0.0.0/0", "except": _PRIVATE, "ports": [443]})]


class NetworkConfig(_Config):
    """NetworkPolicies of auditc's Job pods: no ingress, and egress only where declared.

    Every Job pod may reach DNS, the store and `extra`; pods that download from the
    Hugging Face Hub (model prefetch, Hub datasets, servers without a prefetched cache)
    also `hub`; an evaluation of an `external` service also that service's rules.
    """

    policies: bool = True
    """Declare the NetworkPolicies (needs a CNI that enforces them: Calico, Cilium, …)."""
    dns: list[EgressRule] = Field(
        default_factory=lambda: [
            EgressRule(
                namespace="kube-system",
                pod_labels={"k8s-app": "kube-dns"},
                ports=[53],
                protocols=["UDP", "TCP"],
            )
        ]
    )
    """The cluster's DNS (kube-dns / CoreDNS in kube-system)."""
    store: list[EgressRule] | None = None
    """The object store; default: the store endpoint's port (443 for S3) on any address."""
    hub: list[EgressRule] = Field(default_factory=_public_https)
    """The Hugging Face Hub (its CDN has no fixed addresses); default: public addresses on 443."""
    external: dict[str, list[EgressRule]] = Field(default_factory=dict)
    """InferenceService name → where its `external` URL is; default: the URL's port anywhere."""
    extra: list[EgressRule] = Field(default_factory=list)
    """For every Job pod: identity endpoints (STS, a metadata server), a proxy."""


class ScratchConfig(_Config):
    """Size limits of pods' emptyDirs, also requested as ephemeral storage."""

    inputs: Quantity = "20Gi"
    """Fetched inputs (data files, Modules, model directories)."""
    tmp: Quantity = "2Gi"
    """`/tmp` of auditc's steps."""
    server_tmp: Quantity = "8Gi"
    """`/tmp` of inference servers (compilation caches)."""


class BudgetConfig(_Config):
    """Limits on what one deployment may spend, checked by `compile` and `pulumi preview`."""

    gpu_hours: float | None = Field(default=None, gt=0)
    """Most estimated GPU-hours of the evaluations a deployment runs (those not yet
    complete in the store), counting each at its estimate, or its deadline when no
    throughput is known."""


class KubernetesConfig(_Config):
    """Everything a stack says about the cluster.

    Example (`stacks/Pulumi.dev.yaml`):

    ```yaml
    config:
      auditc:namespace: audits
      auditc:store: {uri: "s3://audit-results/main", credentialsSecret: auditc-s3}
      auditc:images: {runner: "ghcr.io/acme/auditc-runner:0.1.0"}
    ```
    """

    specs: list[str] = Field(default_factory=lambda: ["audits"])
    """Spec files or directories, relative to the project root."""
    select: list[str] = Field(default_factory=list)
    """Deploy only these resources and what they need (`name`, `name+`); default all."""
    namespace: str = Field(default="auditc", pattern=_DNS_LABEL)
    create_namespace: bool = True
    """Create the namespace (with the `restricted` Pod Security level), or use an existing one."""
    store: StoreConfig
    images: ImagesConfig = ImagesConfig()
    gpu: GpuConfig = GpuConfig()
    storage_class: str | None = None
    """Storage class of the claims the program creates (default: the cluster's default)."""
    model_cache: ModelCacheConfig = ModelCacheConfig()
    hub_endpoint: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    """A Hugging Face Hub mirror or proxy (`HF_ENDPOINT`) for the pods that download from
    the Hub (prefetch Jobs, Hub datasets, servers without a prefetched cache); by
    default the public Hub. `network.hub` then defaults to its port on any address."""
    image_pull_secrets: list[str] = Field(default_factory=list)
    secrets: SecretsConfig = SecretsConfig()
    resources: ResourcesConfig = ResourcesConfig()
    jobs: JobsConfig = JobsConfig()
    shm_size: Quantity = "2Gi"
    """Size of the `/dev/shm` memory volume of inference servers (vLLM needs it for tensor parallelism)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels on every resource (team, cost centre)."""
    external_concurrency: int | None = Field(default=None, ge=1)
    """Most requests in flight to an `external` service from one Evaluation, all its shards
    together (each shard gets an equal share, at least 1); unset: each shard's own limit."""
    scheduling: SchedulingConfig = SchedulingConfig()
    service_account: ServiceAccountConfig = ServiceAccountConfig()
    network: NetworkConfig = NetworkConfig()
    scratch: ScratchConfig = ScratchConfig()
    budget: BudgetConfig = BudgetConfig()

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], source: str) -> KubernetesConfig:
        """Validate un-prefixed keys (`{"namespace": …}`), naming `source` in errors.

        Raises:
            SpecValidationError: a key is unknown or a value is invalid.
        """
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise SpecValidationError(
                [_issue(source, error) for error in exc.errors(include_url=False)]
            ) from None


def _issue(source: str, error: Any) -> Issue:
    loc = tuple(error["loc"])
    head = f"{CONFIG_NAMESPACE}:{loc[0]}" if loc else CONFIG_NAMESPACE
    path = ".".join([head, format_loc(loc[1:])]) if len(loc) > 1 else head
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key (see docs/kubernetes.md for the stack settings)"
    elif error["type"] == "missing":
        message = "is required"
    return Issue(source, 0, 0, message, "stack-config", path=path)


def stack_file(project_dir: Path, stack: str) -> Path:
    """`<project>/stacks/Pulumi.<stack>.yaml` (`stackConfigDir: stacks` in Pulumi.yaml)."""
    return project_dir / "stacks" / f"Pulumi.{stack}.yaml"


def load_stack_config(path: Path, overrides: dict[str, Any] | None = None) -> KubernetesConfig:
    """Read the `auditc:` keys of a Pulumi stack file, then apply `overrides` on top.

    Other namespaces (`kubernetes:…`) and Pulumi's own attributes are ignored.

    Raises:
        UsageError: the file is missing or is not a Pulumi stack file.
        SpecValidationError: an `auditc:` key is unknown or has an invalid value.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"stack file {path} does not exist (create it, or pass --store and other options)"
        ) from None
    return load_stack_text(text, str(path), overrides)


def load_stack_text(
    text: str, source: str, overrides: dict[str, Any] | None = None
) -> KubernetesConfig:
    """`load_stack_config` for a stack file's text (`source` names it in errors).

    Raises:
        UsageError: the text is not a Pulumi stack file.
        SpecValidationError: an `auditc:` key is unknown or has an invalid value.
    """
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise UsageError(
            f"{source}: expected a mapping with a 'config' mapping (a Pulumi stack file)"
        )
    raw = stack_values(document.get("config") or {})
    raw.update(overrides or {})
    return KubernetesConfig.from_mapping(raw, source)


def stack_values(config: dict[str, Any]) -> dict[str, Any]:
    """The `auditc:`-namespaced keys of a stack's `config`, without the prefix."""
    prefix = f"{CONFIG_NAMESPACE}:"
    return {k[len(prefix) :]: v for k, v in config.items() if k.startswith(prefix)}
