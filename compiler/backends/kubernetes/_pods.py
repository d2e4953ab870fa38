"""Typed pod pieces: containers, volumes, probes, security contexts, GPU placement.

Every pod auditc declares runs as a non-root user with a read-only root filesystem,
no privilege escalation, all capabilities dropped and the RuntimeDefault seccomp
profile (the `restricted` Pod Security Standard); writable paths are emptyDirs.
Every container has resource requests and limits. Only a server whose
InferenceService asks for an accelerator gets a GPU limit, the GPU node selector
and tolerations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pulumi_kubernetes.core import v1 as core

from runners import PYCACHE_ENV, RUNNER_IMAGE_PYCACHE
from schemas import InferenceService

from ._pod_files import CONFIG_DIR, INPUTS_DIR, STATE_DIR, ServerPlan
from ._stack_config import ContainerResources, KubernetesConfig, Toleration

__all__ = [
    "RUN_AS_NAME",
    "RUN_AS_USER",
    "commit_container",
    "fetch_container",
    "gpu_limits",
    "hf_token_env",
    "hub_cache_env",
    "hub_env",
    "mebibytes",
    "prefetch_container",
    "scratch_request",
    "wait_container",
    "Placement",
    "placement",
    "pod_security_context",
    "secret_env",
    "server_container",
    "step_container",
    "volumes",
]

ModelCache = Literal["none", "download", "prefetched"]
"""Where a server's Hub weights come from (see `server_container`)."""
STATE_SIZE = "16Mi"
RUN_AS_USER = 10001
"""The runner image's user (runners/images/Dockerfile); other images run as it too."""
PROBE_PERIOD_S = 5
LIVENESS_PERIOD_S = 10
LIVENESS_FAILURES = 6
"""A server that does not answer for a minute once it was given time to load is restarted."""
RUN_AS_NAME = "auditc"
"""`USER`/`LOGNAME` of every container: images without a passwd entry for the uid
(vLLM's) otherwise fail in `getpass.getuser()`, which torch calls for its cache dirs."""
_WRITABLE_ENV = {
    # Read-only root filesystem: every tool that writes under $HOME writes to /tmp.
    "HOME": "/tmp",
    "USER": RUN_AS_NAME,
    "LOGNAME": RUN_AS_NAME,
    "XDG_CACHE_HOME": "/tmp/.cache",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    "IPYTHONDIR": "/tmp/ipython",
    "JUPYTER_RUNTIME_DIR": "/tmp/jupyter/runtime",
    "JUPYTER_DATA_DIR": "/tmp/jupyter/data",
    "PYTHONUNBUFFERED": "1",
}
_SERVER_CACHE_ENV = {
    # Compilation caches of torch, Triton and vLLM, which default to paths under the
    # image's read-only root or to a per-user temp dir named after getpass.getuser().
    "TORCHINDUCTOR_CACHE_DIR": "/tmp/torchinductor",
    "TRITON_CACHE_DIR": "/tmp/triton",
    "VLLM_CACHE_ROOT": "/tmp/vllm",
}


def pod_security_context() -> core.PodSecurityContextArgs:
    """Non-root, RuntimeDefault seccomp; volumes writable by the pod's group.

    `fsGroupChangePolicy: OnRootMismatch`: the kubelet changes the group of a volume's
    files only when its root is not already the pod's group, so a shared model cache of
    many gigabytes is not walked again by every pod that mounts it.
    """
    return core.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=RUN_AS_USER,
        fs_group=RUN_AS_USER,
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
    )


def _container_security() -> core.SecurityContextArgs:
    return core.SecurityContextArgs(
        run_as_non_root=True,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        privileged=False,
        capabilities=core.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
    )


def _resources(
    spec: ContainerResources,
    extra_limits: dict[str, str] | None = None,
    ephemeral: str | None = None,
) -> core.ResourceRequirementsArgs:
    storage = {"ephemeral-storage": ephemeral} if ephemeral else {}
    return core.ResourceRequirementsArgs(
        requests={"cpu": spec.cpu, "memory": spec.memory, **storage},
        limits={
            "cpu": spec.cpu_limit or spec.cpu,
            "memory": spec.memory_limit or spec.memory,
            **(extra_limits or {}),
        },
    )


def _env(values: dict[str, str]) -> list[core.EnvVarArgs]:
    return [core.EnvVarArgs(name=k, value=v) for k, v in sorted(values.items())]


def _secret_env(name: str, secret: str, key: str, *, optional: bool) -> core.EnvVarArgs:
    return core.EnvVarArgs(
        name=name,
        value_from=core.EnvVarSourceArgs(
            secret_key_ref=core.SecretKeySelectorArgs(name=secret, key=key, optional=optional)
        ),
    )


def hf_token_env(config: KubernetesConfig) -> list[core.EnvVarArgs]:
    """`HF_TOKEN` and `HUGGING_FACE_HUB_TOKEN` from the stack's Hugging Face token Secret."""
    ref = config.secrets.hf_token
    if ref is None:
        return []
    return [
        _secret_env(var, ref.name, ref.key, optional=ref.optional)
        for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
    ]


def _store_access(
    config: KubernetesConfig,
) -> tuple[list[core.EnvFromSourceArgs], list[core.VolumeMountArgs]]:
    """Credentials (object store) or the volume mount (PVC) every store user needs."""
    store = config.store
    if store.pvc is not None:
        return [], [core.VolumeMountArgs(name="store", mount_path=store.mount_path)]
    if store.credentials_secret is None:
        return [], []
    source = core.SecretEnvSourceArgs(name=store.credentials_secret, optional=False)
    return [core.EnvFromSourceArgs(secret_ref=source)], []


def _mount(name: str, path: str, *, read_only: bool = False) -> core.VolumeMountArgs:
    return core.VolumeMountArgs(name=name, mount_path=path, read_only=read_only or None)


def _runner_container(
    name: str,
    args: Sequence[str],
    config: KubernetesConfig,
    resources: ContainerResources,
    *,
    mounts: Sequence[core.VolumeMountArgs],
    env: Sequence[core.EnvVarArgs] = (),
    store: bool = True,
    ephemeral: str | None = None,
) -> core.ContainerArgs:
    env_from, store_mounts = _store_access(config) if store else ([], [])
    return core.ContainerArgs(
        name=name,
        image=config.images.runner,
        image_pull_policy=config.images.pull_policy,
        command=["python", "-m"],
        args=list(args),
        # Bytecode only from the image's build-time cache, never from fetched Modules.
        env=[*_env({**_WRITABLE_ENV, PYCACHE_ENV: RUNNER_IMAGE_PYCACHE}), *env],
        env_from=env_from or None,
        volume_mounts=[*mounts, *store_mounts, _mount("tmp", "/tmp")],
        resources=_resources(resources, ephemeral=ephemeral),
        security_context=_container_security(),
        termination_message_policy="FallbackToLogsOnError",
    )


def fetch_container(config: KubernetesConfig) -> core.ContainerArgs:
    """Init container: download the pod's inputs and verify their sha256 (exit 2 on mismatch)."""
    return _runner_container(
        "fetch",
        ["runners.fetch", "inputs", f"{CONFIG_DIR}/inputs.json"],
        config,
        config.resources.fetch,
        mounts=[
            _mount("config", CONFIG_DIR, read_only=True),
            _mount("inputs", INPUTS_DIR),
            _mount("state", STATE_DIR),
        ],
    )


def step_container(
    name: str,
    args: Sequence[str],
    config: KubernetesConfig,
    resources: ContainerResources,
    *,
    env: Sequence[core.EnvVarArgs] = (),
    ephemeral: str | None = None,
) -> core.ContainerArgs:
    """A runner step (`python -m runners.<step> /etc/auditc/step.json …`).

    `ephemeral` is the pod's ephemeral-storage request, given to its main container.
    """
    return _runner_container(
        name,
        args,
        config,
        resources,
        env=env,
        ephemeral=ephemeral,
        mounts=[
            _mount("config", CONFIG_DIR, read_only=True),
            _mount("inputs", INPUTS_DIR, read_only=True),
            _mount("state", STATE_DIR),
        ],
    )


def commit_container(
    config: KubernetesConfig, *, state: bool = True, ephemeral: str | None = None
) -> core.ContainerArgs:
    """Writes the node's manifest once its step succeeded (the pod's main container)."""
    mounts = [_mount("config", CONFIG_DIR, read_only=True)]
    if state:
        mounts.append(_mount("state", STATE_DIR, read_only=True))
    return _runner_container(
        "commit",
        ["runners.fetch", "commit", f"{CONFIG_DIR}/commit.json"],
        config,
        config.resources.fetch,
        mounts=mounts,
        ephemeral=ephemeral,
    )


def wait_container(config: KubernetesConfig, *, model_cache: bool = False) -> core.ContainerArgs:
    """Init container of asynchronous runs: waits until the pod's inputs are committed.

    `pulumi up` does not wait for Jobs then (`pulumi.com/skipAwait`), so every Job is
    created at once; this step holds the pod back until each upstream node's manifest
    in the store says `complete` with the id the pod was compiled for, and — with
    `model_cache` — until the model's prefetch Job has filled the shared cache.
    """
    mounts = [_mount("config", CONFIG_DIR, read_only=True)]
    if model_cache:
        mounts.append(_mount("model-cache", config.model_cache.mount_path, read_only=True))
    return _runner_container(
        "wait",
        ["runners.fetch", "wait", f"{CONFIG_DIR}/wait.json"],
        config,
        config.resources.fetch,
        mounts=mounts,
    )


def prefetch_container(config: KubernetesConfig, ephemeral: str) -> core.ContainerArgs:
    """Main container of a model's prefetch Job: the weights into the shared model cache."""
    return core.ContainerArgs(
        name="prefetch",
        image=config.images.runner,
        image_pull_policy=config.images.pull_policy,
        command=["python", "-m"],
        args=["runners.fetch", "model", f"{CONFIG_DIR}/model.json"],
        env=[
            *_env({**_WRITABLE_ENV, **hub_cache_env(config), PYCACHE_ENV: RUNNER_IMAGE_PYCACHE}),
            *hub_env(config),
        ],
        volume_mounts=[
            _mount("config", CONFIG_DIR, read_only=True),
            _mount("model-cache", config.model_cache.mount_path),
            _mount("tmp", "/tmp"),
        ],
        resources=_resources(config.resources.fetch, ephemeral=ephemeral),
        security_context=_container_security(),
        termination_message_policy="FallbackToLogsOnError",
    )


def hub_env(config: KubernetesConfig) -> list[core.EnvVarArgs]:
    """What a pod that downloads from the Hugging Face Hub needs: the stack's Hub
    endpoint (`HF_ENDPOINT`, a mirror), if any, and the token."""
    endpoint = {"HF_ENDPOINT": config.hub_endpoint} if config.hub_endpoint else {}
    return [*_env(endpoint), *hf_token_env(config)]


def hub_cache_env(config: KubernetesConfig) -> dict[str, str]:
    """Where Hugging Face libraries find (and a prefetch Job puts) the shared weights.

    `HF_HUB_CACHE` is the shared volume; `HF_HOME` (tokens, modules, Xet chunks) stays
    in the pod's `/tmp`, so nothing but the weights is ever written to the volume.
    """
    return {"HF_HUB_CACHE": f"{config.model_cache.mount_path}/hub", "HF_HOME": "/tmp/huggingface"}


def secret_env(name: str, secret: str, key: str) -> core.EnvVarArgs:
    """An environment variable read from a Secret key (its value never enters a manifest)."""
    return _secret_env(name, secret, key, optional=False)


def gpu_limits(service: InferenceService) -> dict[str, str]:
    """`{"nvidia.com/gpu": "N"}` when the service asks for an accelerator, else `{}`."""
    accelerator = service.spec.resources.accelerator
    return {accelerator.kind: str(accelerator.count)} if accelerator is not None else {}


@dataclass(frozen=True)
class Placement:
    """Where a pod may run and how it is scheduled (all None: the cluster's defaults)."""

    node_selector: dict[str, str] | None = None
    tolerations: list[core.TolerationArgs] | None = None
    affinity: core.AffinityArgs | None = None
    runtime_class_name: str | None = None
    priority_class_name: str | None = None


def _tolerations(items: Sequence[Toleration]) -> list[core.TolerationArgs] | None:
    found = [
        core.TolerationArgs(key=t.key, operator=t.operator, value=t.value, effect=t.effect)
        for t in items
    ]
    return found or None


def placement(
    service: InferenceService | None, config: KubernetesConfig, *, job: bool = True
) -> Placement:
    """Placement of a pod: GPU nodes only if its server wants a GPU.

    A GPU pod gets `gpu.nodeSelector`/`gpu.tolerations` (and the service's product); a
    Job's pods also get `scheduling`: the priority class, and for GPU pods the runtime
    class and a node affinity to any of `gpuProducts`, for the others `scheduling.cpu`.
    """
    scheduling = config.scheduling
    priority = scheduling.priority_class_name if job else None
    if service is None or service.spec.resources.accelerator is None:
        if not job:
            return Placement()
        cpu = scheduling.cpu
        return Placement(
            node_selector=dict(cpu.node_selector) or None,
            tolerations=_tolerations(cpu.tolerations),
            runtime_class_name=cpu.runtime_class_name,
            priority_class_name=priority,
        )
    selector = dict(config.gpu.node_selector)
    product = service.spec.resources.accelerator.product
    if product is not None:
        selector[config.gpu.product_label] = product
    affinity = None
    if job and product is None and scheduling.gpu_products:
        term = core.NodeSelectorTermArgs(
            match_expressions=[
                core.NodeSelectorRequirementArgs(
                    key=config.gpu.product_label,
                    operator="In",
                    values=list(scheduling.gpu_products),
                )
            ]
        )
        affinity = core.AffinityArgs(
            node_affinity=core.NodeAffinityArgs(
                required_during_scheduling_ignored_during_execution=core.NodeSelectorArgs(
                    node_selector_terms=[term]
                )
            )
        )
    return Placement(
        node_selector=selector or None,
        tolerations=_tolerations(config.gpu.tolerations),
        affinity=affinity,
        runtime_class_name=scheduling.runtime_class_name if job else None,
        priority_class_name=priority,
    )


def _probe(plan: ServerPlan, period: int, failures: int, initial_delay: int = 0) -> core.ProbeArgs:
    # No host: the kubelet sends the request to the pod IP, so servers listen on 0.0.0.0.
    return core.ProbeArgs(
        http_get=core.HTTPGetActionArgs(path=plan.health_path, port="http"),
        initial_delay_seconds=initial_delay or None,
        period_seconds=period,
        timeout_seconds=min(period, 5),
        failure_threshold=failures,
    )


def _server_probes(plan: ServerPlan, *, sidecar: bool, ready_timeout_s: float) -> dict[str, Any]:
    """startup/readiness/liveness probes of a server (see `server_container`)."""
    ready_s = max(1, math.ceil(ready_timeout_s))
    readiness = _probe(plan, PROBE_PERIOD_S, 3)
    if sidecar:
        return {
            "startup_probe": None,
            "readiness_probe": readiness,
            "liveness_probe": _probe(plan, LIVENESS_PERIOD_S, LIVENESS_FAILURES, ready_s),
        }
    return {
        "startup_probe": _probe(plan, PROBE_PERIOD_S, math.ceil(ready_s / PROBE_PERIOD_S)),
        "readiness_probe": readiness,
        "liveness_probe": _probe(plan, LIVENESS_PERIOD_S, LIVENESS_FAILURES),
    }


def server_container(
    plan: ServerPlan,
    service: InferenceService,
    config: KubernetesConfig,
    *,
    sidecar: bool,
    ready_timeout_s: float,
    cache: ModelCache = "none",
    ephemeral: str | None = None,
) -> core.ContainerArgs:
    """The inference server: a native sidecar of an evaluation pod, or a session's container.

    A session's server has a startup probe that gives the model `ready_timeout_s` to
    load before liveness checks begin. A sidecar has none: the kubelet would not start
    the evaluation client until it passed, and would restart the sidecar for ever when
    it fails, so a server that never loads could never fail the pod. Instead the
    client waits for the server itself and exits with code 4 after `ready_timeout_s`
    (`runners.evaluation`), and the sidecar's liveness probe starts only then, so a
    slowly loading model (vLLM can take many minutes) is never killed while it loads.

    `cache` says where Hub weights come from: `prefetched` (the shared volume, filled
    by the model's prefetch Job, mounted read-only, `HF_HUB_OFFLINE=1`), `download`
    (the server downloads them into its model-cache volume) or `none` (no Hub model).
    """
    resources = service.spec.resources
    env = {**_WRITABLE_ENV, **_SERVER_CACHE_ENV, **plan.env}
    mounts = [
        _mount("inputs", INPUTS_DIR, read_only=True),
        _mount("tmp", "/tmp"),
    ]
    if resources.accelerator is not None:
        mounts.append(_mount("shm", "/dev/shm"))
    if cache == "prefetched":
        env.update({**hub_cache_env(config), "HF_HUB_OFFLINE": "1"})
        mounts.append(_mount("model-cache", config.model_cache.mount_path, read_only=True))
    elif cache == "download":
        env["HF_HOME"] = config.model_cache.mount_path
        if config.hub_endpoint:
            env["HF_ENDPOINT"] = config.hub_endpoint
        mounts.append(_mount("model-cache", config.model_cache.mount_path))
    if plan.image == config.images.runner:  # auditc's servers import Modules: see _bytecode
        env[PYCACHE_ENV] = RUNNER_IMAGE_PYCACHE
    if plan.server_json is not None:
        mounts.insert(0, _mount("config", CONFIG_DIR, read_only=True))
    token = hf_token_env(config) if plan.wants_hf_token and cache != "prefetched" else []
    return core.ContainerArgs(
        name="server",
        image=plan.image,
        image_pull_policy=config.images.pull_policy,
        command=plan.command or None,
        args=plan.args or None,
        env=[*_env(env), *token],
        ports=[core.ContainerPortArgs(name="http", container_port=plan.port, protocol="TCP")],
        **_server_probes(plan, sidecar=sidecar, ready_timeout_s=ready_timeout_s),
        resources=_resources(
            ContainerResources(cpu=resources.cpu, memory=resources.memory),
            gpu_limits(service),
            ephemeral=ephemeral,
        ),
        security_context=_container_security(),
        volume_mounts=mounts,
        # A native sidecar: started before the client, stopped when the client exits.
        restart_policy="Always" if sidecar else None,
        termination_message_policy="FallbackToLogsOnError",
    )


def volumes(
    config: KubernetesConfig,
    config_map: str,
    *,
    server: bool = False,
    shm: bool = False,
    model_cache: bool = False,
) -> list[core.VolumeArgs]:
    """The pod's volumes: its ConfigMap, scratch emptyDirs, the store and the model cache.

    Every emptyDir has a size limit; `/dev/shm` only for GPU servers, the model cache only
    for servers that load Hub weights (and prefetch Jobs).
    """
    scratch = config.scratch
    found = [
        core.VolumeArgs(name="config", config_map=core.ConfigMapVolumeSourceArgs(name=config_map)),
        core.VolumeArgs(
            name="inputs", empty_dir=core.EmptyDirVolumeSourceArgs(size_limit=scratch.inputs)
        ),
        core.VolumeArgs(
            name="state", empty_dir=core.EmptyDirVolumeSourceArgs(size_limit=STATE_SIZE)
        ),
        core.VolumeArgs(
            name="tmp",
            empty_dir=core.EmptyDirVolumeSourceArgs(
                size_limit=scratch.server_tmp if server else scratch.tmp
            ),
        ),
    ]
    if config.store.pvc is not None:
        claim = core.PersistentVolumeClaimVolumeSourceArgs(claim_name=config.store.pvc.claim_name)
        found.append(core.VolumeArgs(name="store", persistent_volume_claim=claim))
    if shm:
        found.append(
            core.VolumeArgs(
                name="shm",
                empty_dir=core.EmptyDirVolumeSourceArgs(
                    medium="Memory", size_limit=config.shm_size
                ),
            )
        )
    if model_cache:
        found.append(_model_cache(config))
    return found


def scratch_request(
    config: KubernetesConfig, *, server: bool = False, cache_volume: bool = False
) -> str:
    """The pod's ephemeral-storage request: what its disk-backed emptyDirs may hold.

    `cache_volume`: the pod's server downloads weights into an emptyDir model cache.
    """
    scratch = config.scratch
    parts = [scratch.inputs, STATE_SIZE, scratch.server_tmp if server else scratch.tmp]
    if cache_volume:
        parts.append(config.model_cache.size_limit)
    return f"{sum(map(mebibytes, parts))}Mi"


_UNITS = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def mebibytes(quantity: str) -> int:
    """A storage quantity (`2Gi`, `500M`, `1024`) in whole mebibytes, rounded up."""
    number = quantity.rstrip("kMGTi")
    unit = quantity[len(number) :]
    return math.ceil(float(number) * _UNITS[unit] / 1024**2)


def _model_cache(config: KubernetesConfig) -> core.VolumeArgs:
    cache = config.model_cache
    if cache.pvc is not None:
        claim = core.PersistentVolumeClaimVolumeSourceArgs(claim_name=cache.pvc.claim_name)
        return core.VolumeArgs(name="model-cache", persistent_volume_claim=claim)
    return core.VolumeArgs(
        name="model-cache", empty_dir=core.EmptyDirVolumeSourceArgs(size_limit=cache.size_limit)
    )
