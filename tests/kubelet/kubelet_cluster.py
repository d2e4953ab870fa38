"""The test cluster: applies a directory of manifests and runs its Jobs to their end.

`Cluster.apply(directory)` does what `pulumi up` (or a GitOps tool) does with the
directory `auditc compile --target kubernetes` writes, and what the Job controller
then does with each Job:

- objects are applied wave by wave (`argocd.argoproj.io/sync-wave`, the file order);
  the Jobs of a wave run concurrently, and a wave starts only once every Job before
  it completed — a failed Job stops the apply there, as `pulumi up` stops;
- a Job already in the cluster under the same name is kept when its manifest is
  unchanged and it completed; replaced (run again) when its manifest changed, or when
  it failed and carries `pulumi.com/replaceUnready: "true"`; without that annotation a
  failed Job stays failed and the apply fails on it again, as pulumi-kubernetes waits
  on it (its documented behaviour; the Pulumi CLI cannot run here);
- the Job controller runs `parallelism` pods at a time; an Indexed Job runs every
  completion index with the `batch.kubernetes.io/job-completion-index` annotation and
  label, `JOB_COMPLETION_INDEX` in every container, and the hostname `<job>-<index>`
  (refused, as the API server would, when it is not a DNS label); a failed pod goes
  through `podFailurePolicy` (`FailJob`, `FailIndex`, `Ignore`, `Count` by exit code
  and container), then `backoffLimitPerIndex`/`maxFailedIndexes` or `backoffLimit`,
  retrying after the controller's back-off (10 s, doubling); `activeDeadlineSeconds`
  ends the Job.

Objects other than Jobs are recorded (ConfigMaps and Secrets feed pods; claims become
directories); Deployments and Services are refused: the test audits declare none.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from kubelet_env import Sources
from kubelet_images import Images
from kubelet_network import NodeNetwork
from kubelet_pod import PodEnvironment, PodResult, run_pod

__all__ = ["ApplyResult", "Cluster", "JobStatus", "Manifest", "load_manifests"]

SYNC_WAVE = "argocd.argoproj.io/sync-wave"
REPLACE_UNREADY = "pulumi.com/replaceUnready"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
POD_BACKOFF_S = 10.0
"""The Job controller's first delay before re-creating a failed pod (doubling, ≤ 6 min)."""
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_FILE = re.compile(r"^\d{2,}-[a-z]+-[a-z0-9.-]+\.yaml$")
_SUPPORTED = {
    "Namespace",
    "ServiceAccount",
    "ConfigMap",
    "Secret",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "Job",
}


@dataclass(frozen=True)
class Manifest:
    """One object of the directory."""

    path: Path
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def wave(self) -> int:
        return int((self.body["metadata"].get("annotations") or {}).get(SYNC_WAVE, "0"))

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.body["metadata"].get("annotations") or {})


def load_manifests(directory: Path) -> list[Manifest]:
    """The directory's manifests in apply order (file names `NN-kind-name.yaml`).

    Raises:
        ValueError: a file is not a manifest auditc writes, or the numbering contradicts
            the sync waves (a later file in an earlier wave).
    """
    found = []
    for path in sorted(directory.iterdir()):
        if not _FILE.match(path.name):
            continue
        found.append(Manifest(path, yaml.safe_load(path.read_text(encoding="utf-8"))))
    waves = [m.wave for m in found]
    if waves != sorted(waves):
        raise ValueError(f"{directory}: files are not numbered in sync-wave order: {waves}")
    return found


@dataclass
class JobStatus:
    """What `kubectl get job -o yaml` would say, plus every pod it ran."""

    name: str
    condition: Literal["Complete", "Failed", "Running"] = "Running"
    reason: str = ""
    message: str = ""
    pods: list[PodResult] = field(default_factory=list)
    completed_indexes: set[int] = field(default_factory=set)
    failed_indexes: set[int] = field(default_factory=set)
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.condition == "Complete"

    @property
    def duration_s(self) -> float:
        return self.finished_at - self.started_at


@dataclass
class ApplyResult:
    """What one apply did: Jobs run (or kept), and where it stopped."""

    jobs: dict[str, JobStatus] = field(default_factory=dict)
    """Jobs this apply ran, by name."""
    kept: list[str] = field(default_factory=list)
    """Jobs already complete with the same manifest: not run again."""
    failed: list[str] = field(default_factory=list)
    """Jobs that failed (or that a failed Job blocked, without replaceUnready)."""
    errors: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return not self.failed and not self.errors


@dataclass
class _Stored:
    manifest: Manifest
    status: JobStatus


class Cluster:
    """One namespace's worth of cluster: its objects, Secrets, claims and Job history.

    Example:
        >>> with NodeNetwork() as network:                               # doctest: +SKIP
        ...     cluster = Cluster(network, images, workdir)
        ...     cluster.add_secret("auditc-s3", {"AWS_ACCESS_KEY_ID": "…"})
        ...     result = cluster.apply(Path("manifests"))
    """

    def __init__(
        self, network: NodeNetwork, images: Images, workdir: Path, *, gpus: int = 8
    ) -> None:
        self.network = network
        self.images = images
        self.workdir = workdir
        self.gpus = gpus
        self.namespace: str | None = None
        self.secrets: dict[str, dict[str, str]] = {}
        self.config_maps: dict[str, dict[str, str]] = {}
        self.claims: dict[str, Path] = {}
        self.objects: dict[tuple[str, str], Manifest] = {}
        self.jobs: dict[str, _Stored] = {}
        self.running: dict[str, Manifest] = {}
        """Jobs whose pods run now (what the API shows as active)."""

    def add_secret(self, name: str, data: Mapping[str, str]) -> None:
        """A Secret users create beside the stack (`kubectl create secret generic`)."""
        self.secrets[name] = dict(data)

    def apply(self, directory: Path, *, together: bool = False) -> ApplyResult:
        """Apply every manifest of `directory`, wave by wave, running its Jobs to the end.

        `together` runs every Job at once instead, as a cluster does after an
        asynchronous `pulumi up` (`pulumi.com/skipAwait`): the order is then the pods'
        own business (their `wait` init containers).
        """
        result = ApplyResult()
        by_wave: dict[int, list[Manifest]] = {}
        for manifest in load_manifests(directory):
            wave = 1 if together and manifest.kind == "Job" else 0 if together else manifest.wave
            by_wave.setdefault(wave, []).append(manifest)
        for wave in sorted(by_wave):
            jobs = []
            for manifest in by_wave[wave]:
                if manifest.kind == "Job":
                    jobs.append(manifest)
                else:
                    self._record(manifest, result)
            self._run_wave(jobs, result)
            if not result.succeeded:
                break
        return result

    # ------------------------------------------------------------ objects

    def _record(self, manifest: Manifest, result: ApplyResult) -> None:
        if manifest.kind not in _SUPPORTED:
            result.errors.append(
                f"{manifest.path.name}: {manifest.kind} is not run by the test cluster"
            )
            return
        body = manifest.body
        namespace = body["metadata"].get("namespace") or (
            body["metadata"]["name"] if manifest.kind == "Namespace" else None
        )
        if namespace is not None:
            if self.namespace not in (None, namespace):
                result.errors.append(f"{manifest.path.name}: a second namespace {namespace!r}")
                return
            self.namespace = namespace
        if manifest.kind == "ConfigMap":
            self.config_maps[manifest.name] = dict(body.get("data") or {})
        elif manifest.kind == "Secret":
            self.secrets[manifest.name] = dict(body.get("stringData") or {})
        elif manifest.kind == "PersistentVolumeClaim" and manifest.name not in self.claims:
            claim = self.workdir / "claims" / manifest.name
            claim.mkdir(parents=True)
            claim.chmod(0o777)
            self.claims[manifest.name] = claim
        self.objects[(manifest.kind, manifest.name)] = manifest

    # --------------------------------------------------------------- Jobs

    def _decide(self, manifest: Manifest) -> Literal["run", "keep", "blocked"]:
        """What pulumi-kubernetes does with a Job already in the cluster under this name."""
        existing = self.jobs.get(manifest.name)
        if existing is None or existing.manifest.body != manifest.body:
            return "run"  # created, or replaced: a Job's pod template cannot change in place
        if existing.status.succeeded:
            return "keep"
        if manifest.annotations.get(REPLACE_UNREADY) == "true":
            return "run"
        return "blocked"

    def _run_wave(self, manifests: list[Manifest], result: ApplyResult) -> None:
        to_run = []
        for manifest in manifests:
            decision = self._decide(manifest)
            if decision == "keep":
                result.kept.append(manifest.name)
            elif decision == "blocked":
                result.failed.append(manifest.name)
                result.errors.append(
                    f"Job {manifest.name} failed in an earlier update and is not replaced "
                    f"(no {REPLACE_UNREADY} annotation): the update waits on it and fails"
                )
            else:
                to_run.append(manifest)
        if not to_run:
            return
        self.running.update({m.name: m for m in to_run})
        with ThreadPoolExecutor(max_workers=len(to_run)) as pool:
            futures = {pool.submit(self._run_job, m): m for m in to_run}
            for future, manifest in futures.items():
                status = future.result()
                self.jobs[manifest.name] = _Stored(manifest, status)
                del self.running[manifest.name]
                result.jobs[manifest.name] = status
                if not status.succeeded:
                    result.failed.append(manifest.name)

    def job_objects(self) -> list[dict[str, Any]]:
        """Every Job as the API server returns it: the manifest with the Job's status.

        A suspended Job is shown as the API shows it, suspended with no condition (the
        test cluster records it as failed only because nothing here would admit it).
        """
        found: dict[str, tuple[Manifest, JobStatus | None]] = {
            n: (stored.manifest, stored.status) for n, stored in dict(self.jobs).items()
        }
        found.update({name: (manifest, None) for name, manifest in dict(self.running).items()})
        objects = []
        for _, (manifest, status) in sorted(found.items()):
            body = copy.deepcopy(manifest.body)
            completions = int(body["spec"].get("completions") or 1)
            if status is None:
                body["status"] = {"active": 1}
            elif body["spec"].get("suspend"):
                body["status"] = {}
            elif status.succeeded:
                complete = {"type": "Complete", "status": "True"}
                body["status"] = {"succeeded": completions, "conditions": [complete]}
            else:
                failed = {"type": "Failed", "status": "True", "reason": status.reason}
                failed["message"] = status.message
                body["status"] = {"failed": len(status.pods), "conditions": [failed]}
            objects.append(body)
        return objects

    def _environment(self) -> PodEnvironment:
        return PodEnvironment(
            namespace=self.namespace or "default",
            sources=Sources(self.secrets, self.config_maps),
            claims=self.claims,
            images=self.images,
            network=self.network,
            workdir=self.workdir,
            gpu_devices=self.gpus,
        )

    def _run_job(self, manifest: Manifest) -> JobStatus:
        return _JobController(manifest, self._environment()).run()


# ------------------------------------------------------------ Job controller


def _matches(rule: Mapping[str, Any], pod: PodResult) -> bool:
    on_codes = rule.get("onExitCodes")
    if on_codes is not None:
        wanted = set(on_codes["values"])
        container = on_codes.get("containerName")
        for name, code in pod.terminated():
            if code == 0 or (container is not None and name != container):
                continue
            if (code in wanted) == (on_codes["operator"] == "In"):
                return True
        return False
    # onPodConditions: the test kubelet never sets DisruptionTarget (nothing evicts pods).
    return False


def pod_failure_action(policy: Mapping[str, Any] | None, pod: PodResult) -> str:
    """The action of the first `podFailurePolicy` rule a failed pod matches, else `Count`."""
    for rule in (policy or {}).get("rules", []):
        if _matches(rule, pod):
            return str(rule["action"])
    return "Count"


class _JobController:
    """Runs one Job's pods and decides its fate, as the Job controller does."""

    def __init__(self, manifest: Manifest, env: PodEnvironment) -> None:
        self.manifest = manifest
        self.spec = manifest.body["spec"]
        self.env = env
        self.status = JobStatus(manifest.name)
        self.indexed = self.spec.get("completionMode") == "Indexed"
        self.stop = threading.Event()
        self.failures: dict[int, int] = {}

    def run(self) -> JobStatus:
        self.status.started_at = time.monotonic()
        try:
            self._run()
        finally:
            self.status.finished_at = time.monotonic()
        return self.status

    def _finish(
        self, condition: Literal["Complete", "Failed"], reason: str, message: str = ""
    ) -> None:
        self.status.condition, self.status.reason, self.status.message = condition, reason, message
        self.stop.set()

    def _pod(self, index: int) -> PodResult:
        template = self.spec["template"]
        metadata = {
            "labels": {
                **(template["metadata"].get("labels") or {}),
                "batch.kubernetes.io/job-name": self.manifest.name,
                "job-name": self.manifest.name,
            },
            "annotations": dict(template["metadata"].get("annotations") or {}),
        }
        spec = dict(template["spec"])
        hostname = f"{self.manifest.name}-{index}" if self.indexed else ""
        name = (
            f"{self.manifest.name}-{index}-{secrets.token_hex(3)[:5]}"
            if self.indexed
            else f"{self.manifest.name}-{secrets.token_hex(3)[:5]}"
        )
        if self.indexed:
            metadata["annotations"][INDEX_ANNOTATION] = str(index)
            metadata["labels"][INDEX_ANNOTATION] = str(index)
            spec = _with_index_env(spec)
            if not _DNS_LABEL.match(hostname):
                raise ValueError(
                    f"the API server refuses pod {name}: spec.hostname {hostname!r} "
                    f"({len(hostname)} characters) must be a DNS label of at most 63"
                )
        else:
            hostname = name[:63].rstrip("-")
        return run_pod(name, hostname, metadata, spec, self.env, self.stop)

    def _run(self) -> None:
        if self.spec.get("suspend"):
            # Nothing admits a suspended Job here (no Kueue): a test un-suspends it.
            self._finish("Failed", "Suspended", "the test cluster does not admit suspended Jobs")
            return
        completions = int(self.spec.get("completions", 1))
        parallelism = int(self.spec.get("parallelism", 1))
        deadline = self.status.started_at + float(self.spec.get("activeDeadlineSeconds", 10**9))
        pending: deque[tuple[float, int]] = deque((0.0, i) for i in range(completions))
        active: dict[Future[PodResult], int] = {}
        with ThreadPoolExecutor(max_workers=parallelism) as pool:
            while pending or active:
                now = time.monotonic()
                if now >= deadline:
                    self._finish(
                        "Failed",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                    )
                if self.stop.is_set():
                    wait(active)
                    self.status.pods += [
                        future.result() for future in active if future.exception() is None
                    ]
                    break
                while pending and len(active) < parallelism and pending[0][0] <= now:
                    _, index = pending.popleft()
                    active[pool.submit(self._pod, index)] = index
                timeout = min(deadline - now, 0.2)
                if pending:
                    timeout = min(timeout, max(0.0, pending[0][0] - now))
                done, _ = wait(active, timeout=max(timeout, 0.01), return_when=FIRST_COMPLETED)
                for future in done:
                    index = active.pop(future)
                    try:
                        pod = future.result()
                    except ValueError as exc:
                        self._finish("Failed", "PodCreateError", str(exc))
                        continue
                    self.status.pods.append(pod)
                    self._after(pod, index, pending)
        if self.status.condition == "Running":
            if self.status.failed_indexes:
                failed = ",".join(map(str, sorted(self.status.failed_indexes)))
                self._finish("Failed", "FailedIndexes", f"Job has failed indexes: {failed}")
            else:
                self._finish("Complete", "")

    def _after(self, pod: PodResult, index: int, pending: deque[tuple[float, int]]) -> None:
        if pod.phase == "Succeeded":
            self.status.completed_indexes.add(index)
            return
        if self.stop.is_set():
            return
        action = pod_failure_action(self.spec.get("podFailurePolicy"), pod)
        if action == "FailJob":
            self._finish(
                "Failed",
                "PodFailurePolicy",
                f"pod {pod.name} matched a FailJob rule ({pod.reason})",
            )
            return
        if action == "FailIndex" and self.indexed:
            self.status.failed_indexes.add(index)
        elif action == "Ignore":
            pending.append((time.monotonic(), index))
            return
        else:
            self.failures[index] = self.failures.get(index, 0) + 1
            if self._out_of_retries(index):
                return
            delay = min(POD_BACKOFF_S * 2 ** (self.failures[index] - 1), 360.0)
            pending.append((time.monotonic() + delay, index))
            return
        self._check_max_failed()

    def _out_of_retries(self, index: int) -> bool:
        if self.indexed and "backoffLimitPerIndex" in self.spec:
            if self.failures[index] > int(self.spec["backoffLimitPerIndex"]):
                self.status.failed_indexes.add(index)
                self._check_max_failed()
                return True
            return False
        if sum(self.failures.values()) > int(self.spec.get("backoffLimit", 6)):
            self._finish(
                "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            )
            return True
        return False

    def _check_max_failed(self) -> None:
        limit = self.spec.get("maxFailedIndexes")
        if limit is not None and len(self.status.failed_indexes) > int(limit):
            self._finish(
                "Failed",
                "MaxFailedIndexesExceeded",
                "Job has exceeded the specified maximal number of failed indexes",
            )


def _with_index_env(spec: dict[str, Any]) -> dict[str, Any]:
    """The Job controller adds `JOB_COMPLETION_INDEX` to every container that lacks it."""
    variable = {
        "name": "JOB_COMPLETION_INDEX",
        "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}},
    }

    def with_env(container: dict[str, Any]) -> dict[str, Any]:
        env = list(container.get("env") or [])
        if not any(item["name"] == "JOB_COMPLETION_INDEX" for item in env):
            env.append(variable)
        return {**container, "env": env}

    result = dict(spec)
    for key in ("initContainers", "containers"):
        if key in result:
            result[key] = [with_env(c) for c in result[key]]
    return result
