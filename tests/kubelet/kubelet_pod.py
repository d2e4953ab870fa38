"""The test kubelet: runs one pod the way a kubelet does, with real processes.

For a pod (a Job's pod template plus the metadata the Job controller adds), it:

- gives the pod a network namespace with its own IP (`kubelet_network`) and prepares
  its volumes as directories: ConfigMap keys as files, emptyDirs (world-writable, as
  the kubelet makes them), PersistentVolumeClaims from the cluster;
- starts the init containers in order: a regular one must exit 0 before the next
  starts (else the pod fails); a native sidecar (`restartPolicy: Always`) starts and,
  if it has a startup probe, must pass it before the next container starts; it is
  restarted (with the kubelet's back-off) whenever it exits while the pod runs;
- starts the main containers, waits for them, then stops the sidecars (SIGTERM, then
  SIGKILL after the grace period), last started first;
- runs each container through `kubelet_sandbox.py` (the container runtime) with the
  exact `command`/`args`, environment (`kubelet_env`), working directory, volume mounts,
  user, groups and read-only root of the manifest, on an image from `kubelet_images`;
- probes each container the kubelet's way: `httpGet` from the node to the pod IP and
  the named or numbered port, with the probe's initial delay, period, timeout and
  thresholds; a failed liveness probe (or startup probe) restarts the container.

The result records, per container, its exit codes, restarts and probe outcomes, and
the pod's phase: what `kubectl describe pod` would show.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kubelet_env import ContainerConfigError, PodFields, Sources, container_argv, container_env
from kubelet_images import HERE, Image, Images
from kubelet_network import NodeNetwork, PodNetwork, in_namespace

__all__ = [
    "ContainerStatus",
    "PodEnvironment",
    "PodResult",
    "ProbeStats",
    "run_pod",
]

SANDBOX = HERE / "kubelet_sandbox.py"
DEFAULT_GRACE_S = 30.0
BACKOFF_INITIAL_S = 10.0
BACKOFF_MAX_S = 300.0
"""The kubelet's restart back-off (CrashLoopBackOff): 10 s, doubling, at most 5 min."""
NODE_NAME = "kubelet-test-node"
ContainerKind = Literal["init", "sidecar", "main"]


@dataclass
class ProbeStats:
    """How often one probe of one container passed and failed, and its last error."""

    successes: int = 0
    failures: int = 0
    last_error: str | None = None


@dataclass
class ContainerStatus:
    """One container across its restarts."""

    name: str
    kind: ContainerKind
    exit_codes: list[int] = field(default_factory=list)
    restarts: int = 0
    started: bool = False
    ever_ready: bool = False
    ready: bool = False
    probes: dict[str, ProbeStats] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)
    error: str | None = None
    """Why it could not be created (CreateContainerConfigError, ErrImagePull, …)."""

    @property
    def exit_code(self) -> int | None:
        """The exit code of its last run (what `state.terminated.exitCode` says)."""
        return self.exit_codes[-1] if self.exit_codes else None

    def log(self) -> str:
        """Every run's output, oldest first (`kubectl logs --previous` and `kubectl logs`)."""
        return "".join(path.read_text(errors="replace") for path in self.logs if path.exists())


@dataclass
class PodResult:
    """What became of a pod."""

    name: str
    hostname: str
    ip: str
    labels: dict[str, str]
    annotations: dict[str, str]
    phase: Literal["Succeeded", "Failed"] = "Failed"
    reason: str = ""
    containers: dict[str, ContainerStatus] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0

    def terminated(self) -> Iterator[tuple[str, int]]:
        """(container, exit code) of every container that ran, init containers first."""
        for name, status in self.containers.items():
            if status.exit_code is not None:
                yield name, status.exit_code

    def log(self, container: str) -> str:
        """A container's output."""
        return self.containers[container].log()


@dataclass
class PodEnvironment:
    """What a pod gets from the cluster and the node."""

    namespace: str
    sources: Sources
    claims: Mapping[str, Path]
    """PersistentVolumeClaim name → its directory."""
    images: Images
    network: NodeNetwork
    workdir: Path
    """Where pod directories (volumes, logs, root filesystems) are made."""
    gpu_devices: int = 8
    """How many fake GPUs the node's device plugin hands out."""


# ----------------------------------------------------------------- volumes


def _prepare_volumes(
    pod_dir: Path, spec: Mapping[str, Any], env: PodEnvironment
) -> dict[str, Path]:
    """Volume name → directory on the node."""
    found: dict[str, Path] = {}
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    for volume in spec.get("volumes") or []:
        name = volume["name"]
        target = pod_dir / "volumes" / name
        if "configMap" in volume or "secret" in volume:
            kind = "configmap" if "configMap" in volume else "secret"
            ref = volume.get("configMap") or volume["secret"]
            ref_name = ref.get("name") or ref.get("secretName")
            data = env.sources.lookup(kind, ref_name, None, bool(ref.get("optional"))) or {}
            target.mkdir(parents=True)
            mode = ref.get("defaultMode", 0o644)
            for key, text in data.items():
                path = target / key
                path.write_text(text, encoding="utf-8")
                path.chmod(mode)
                if fs_group is not None:
                    os.chown(path, 0, fs_group)
            target.chmod(0o755)
        elif "emptyDir" in volume:
            target.mkdir(parents=True)
            target.chmod(0o777)
        elif "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            if claim not in env.claims:
                raise ContainerConfigError(f'persistentvolumeclaim "{claim}" not found')
            target = env.claims[claim]
        else:
            raise ContainerConfigError(
                f"volume {name}: its type is not supported by the test kubelet"
            )
        found[name] = target
    return found


# --------------------------------------------------------------- containers


@dataclass
class _Settings:
    """What a container run needs besides its spec."""

    pod: PodResult
    pod_spec: Mapping[str, Any]
    env: PodEnvironment
    network: PodNetwork
    volumes: dict[str, Path]
    fields: PodFields
    pod_dir: Path


def _security(spec: Mapping[str, Any], pod_spec: Mapping[str, Any], image: Image) -> dict[str, Any]:
    pod_context = pod_spec.get("securityContext") or {}
    context = spec.get("securityContext") or {}

    def pick(key: str) -> Any:
        return context.get(key, pod_context.get(key))

    uid = pick("runAsUser")
    gid = pick("runAsGroup")
    if uid is None:
        uid = image.user[0] if image.user else 0
    if gid is None:
        gid = image.user[1] if image.user else 0
    if pick("runAsNonRoot") and uid == 0:
        raise ContainerConfigError("container has runAsNonRoot and image will run as root")
    groups = [gid]
    if pod_context.get("fsGroup") is not None:
        groups.append(pod_context["fsGroup"])
    groups += pod_context.get("supplementalGroups") or []
    return {
        "uid": uid,
        "gid": gid,
        "groups": sorted(set(groups)),
        "no_new_privs": context.get("allowPrivilegeEscalation") is False,
        "read_only_root": bool(context.get("readOnlyRootFilesystem")),
    }


def _device_env(spec: Mapping[str, Any], env: PodEnvironment) -> dict[str, str]:
    """What the NVIDIA device plugin sets for a container that has GPU limits."""
    limits = (spec.get("resources") or {}).get("limits") or {}
    count = int(limits.get("nvidia.com/gpu", 0))
    if count > env.gpu_devices:
        raise ContainerConfigError(f"Insufficient nvidia.com/gpu: {count} > {env.gpu_devices}")
    return (
        {"NVIDIA_VISIBLE_DEVICES": ",".join(f"GPU-fake-{i}" for i in range(count))} if count else {}
    )


def _sandbox_spec(spec: Mapping[str, Any], settings: _Settings, run: int) -> dict[str, Any]:
    image = settings.env.images.resolve(spec["image"])
    defined = container_env(spec, settings.env.sources, settings.fields)
    argv = container_argv(spec, defined, [], [])
    environment = {
        **image.env,
        "HOSTNAME": settings.pod.hostname,
        **_device_env(spec, settings.env),
        **defined,
    }
    binds = [{"source": path, "target": path, "readonly": True} for path in image.binds]
    binds += [{"source": src, "target": dst, "readonly": True} for src, dst in image.extra_binds]
    binds += [
        {"source": "/proc", "target": "/proc"},
        {"source": "/dev", "target": "/dev"},
        {"source": "/sys", "target": "/sys", "readonly": True},
    ]
    for mount in spec.get("volumeMounts") or []:
        if mount.get("subPath"):
            raise ContainerConfigError(
                "volumeMounts[].subPath is not supported by the test kubelet"
            )
        binds.append(
            {
                "source": str(settings.volumes[mount["name"]]),
                "target": mount["mountPath"],
                "readonly": bool(mount.get("readOnly")),
            }
        )
    workdir = spec.get("workingDir") or image.workdir
    root = settings.pod_dir / "rootfs" / f"{spec['name']}-{run}"
    root.mkdir(parents=True)
    return {
        "netns": settings.network.path,
        "hostname": settings.pod.hostname,
        "rootfs": str(root),
        "binds": binds,
        "symlinks": [
            {"path": link, "to": os.readlink(link)}
            for link in ("/bin", "/lib", "/lib64", "/sbin")
            if os.path.islink(link)
        ],
        "dirs": [
            *({"path": path, "uid": uid, "gid": uid} for path, uid in image.dirs),
            {"path": workdir},
        ],
        "files": [
            {"path": "/etc/passwd", "content": image.passwd},
            {"path": "/etc/group", "content": image.group},
            {"path": "/etc/hostname", "content": settings.pod.hostname + "\n"},
        ],
        "workdir": workdir,
        "argv": argv,
        "env": environment,
        **_security(spec, settings.pod_spec, image),
    }


class _Run:
    """One run of a container: a process in the sandbox, its log and its probes."""

    def __init__(
        self, spec: Mapping[str, Any], status: ContainerStatus, settings: _Settings
    ) -> None:
        self.spec = spec
        self.status = status
        self.settings = settings
        number = len(status.logs)
        self.log = settings.pod_dir / "logs" / f"{spec['name']}-{number}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        status.logs.append(self.log)
        sandbox = _sandbox_spec(spec, settings, number)
        path = settings.pod_dir / f"{spec['name']}-{number}.json"
        path.write_text(json.dumps(sandbox))
        with self.log.open("wb") as handle:
            self.process = subprocess.Popen(
                [sys.executable, str(SANDBOX), str(path)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.ended = threading.Event()
        self.killed = threading.Event()
        status.started = "startupProbe" not in spec
        status.ready = False
        self.prober = _Prober(self)
        self.prober.start()

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code once the process ended (None on timeout)."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._ended(code)
        return code

    def _ended(self, code: int) -> None:
        if self.ended.is_set():
            return
        # A container's processes end with its first one (its PID namespace goes away).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.status.exit_codes.append(code if code >= 0 else 128 - code)
        self.status.ready = False
        self.ended.set()

    def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        self.killed.set()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
        self.wait()


# ------------------------------------------------------------------- probes


def _http_get(probe: Mapping[str, Any], ip: str, ports: Mapping[str, int]) -> str | None:
    """None if the probe passes, else why not."""
    action = probe.get("httpGet")
    if action is None:
        raise ContainerConfigError(f"probe {sorted(probe)} is not supported by the test kubelet")
    port = action["port"]
    number = ports[port] if isinstance(port, str) and not port.isdigit() else int(port)
    host = action.get("host") or ip
    timeout = float(probe.get("timeoutSeconds", 1))
    connection = http.client.HTTPConnection(host, number, timeout=timeout)
    try:
        headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or []}
        connection.request(
            "GET", action.get("path", "/"), headers={"User-Agent": "kube-probe/1.33", **headers}
        )
        status = connection.getresponse().status
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()
    return None if 200 <= status < 400 else f"HTTP probe failed with statuscode: {status}"


class _Prober(threading.Thread):
    """The kubelet's probe workers for one container run, in the node's network namespace."""

    def __init__(self, run: _Run) -> None:
        super().__init__(daemon=True, name=f"probe-{run.spec['name']}")
        self.run_ = run
        spec = run.spec
        self.ports = {p["name"]: p["containerPort"] for p in spec.get("ports") or [] if "name" in p}
        self.probes = {
            kind: spec[f"{kind}Probe"]
            for kind in ("startup", "readiness", "liveness")
            if f"{kind}Probe" in spec
        }

    def run(self) -> None:
        if not self.probes:
            return
        with in_namespace(self.run_.settings.env.network.path):
            start = time.monotonic()
            if "startup" in self.probes and not self._until(
                "startup", start, lambda ok: ok, lambda: self._restart("startup")
            ):
                return
            self.run_.status.started = True
            self._periodic(time.monotonic())

    def _check(self, kind: str) -> bool:
        stats = self.run_.status.probes.setdefault(kind, ProbeStats())
        error = _http_get(self.probes[kind], self.run_.settings.network.ip, self.ports)
        if error is None:
            stats.successes += 1
            return True
        stats.failures += 1
        stats.last_error = error
        return False

    def _until(
        self, kind: str, start: float, done: Callable[[bool], bool], on_failure: Callable[[], None]
    ) -> bool:
        probe = self.probes[kind]
        if self.run_.ended.wait(float(probe.get("initialDelaySeconds", 0))):
            return False
        failures = 0
        while not self.run_.ended.is_set():
            ok = self._check(kind)
            if done(ok):
                return True
            failures = 0 if ok else failures + 1
            if failures >= int(probe.get("failureThreshold", 3)):
                on_failure()
                return False
            if self.run_.ended.wait(float(probe.get("periodSeconds", 10))):
                return False
        return False

    def _periodic(self, start: float) -> None:
        due = {
            kind: start + float(self.probes[kind].get("initialDelaySeconds", 0))
            for kind in ("readiness", "liveness")
            if kind in self.probes
        }
        if "readiness" not in self.probes:
            self._set_ready(True)
        streak = {kind: 0 for kind in due}
        while due and not self.run_.ended.is_set():
            kind = min(due, key=due.__getitem__)
            if self.run_.ended.wait(max(0.0, due[kind] - time.monotonic())):
                return
            probe = self.probes[kind]
            ok = self._check(kind)
            streak[kind] = 0 if ok else streak[kind] + 1
            if kind == "readiness":
                if ok:
                    self._set_ready(True)
                elif streak[kind] >= int(probe.get("failureThreshold", 3)):
                    self._set_ready(False)
            elif streak[kind] >= int(probe.get("failureThreshold", 3)):
                self._restart("liveness")
                return
            due[kind] = time.monotonic() + float(probe.get("periodSeconds", 10))

    def _set_ready(self, ready: bool) -> None:
        status = self.run_.status
        status.ready = ready and not self.run_.ended.is_set()
        status.ever_ready = status.ever_ready or status.ready

    def _restart(self, kind: str) -> None:
        """A failed liveness or startup probe: the kubelet kills the container."""
        self.run_.status.error = f"{kind} probe failed: {self.run_.status.probes[kind].last_error}"
        grace = float(
            self.probes[kind].get("terminationGracePeriodSeconds")
            or _grace(self.run_.settings.pod_spec)
        )
        threading.Thread(target=self.run_.stop, args=(grace,), daemon=True).start()


def _grace(pod_spec: Mapping[str, Any]) -> float:
    return float(pod_spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_S))


# --------------------------------------------------------------------- pods


class _Sidecar:
    """A native sidecar: restarted with back-off whenever it exits while the pod runs."""

    def __init__(
        self, spec: Mapping[str, Any], status: ContainerStatus, settings: _Settings
    ) -> None:
        self.spec = spec
        self.status = status
        self.settings = settings
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.current = _Run(spec, status, settings)
        self.thread = threading.Thread(
            target=self._supervise, daemon=True, name=f"sidecar-{spec['name']}"
        )
        self.thread.start()

    def _supervise(self) -> None:
        backoff = BACKOFF_INITIAL_S
        while True:
            self.current.wait()
            if self.stopping.is_set() or self.stopping.wait(backoff):
                return
            backoff = min(backoff * 2, BACKOFF_MAX_S)
            with self.lock:
                if self.stopping.is_set():
                    return
                self.status.restarts += 1
                self.current = _Run(self.spec, self.status, self.settings)

    def wait_started(self, stop: threading.Event) -> bool:
        """Until its startup probe passed (at once without one); False if the pod stops."""
        while not self.status.started:
            if stop.wait(0.05):
                return False
        return True

    def stop(self, grace: float) -> None:
        with self.lock:
            self.stopping.set()
            current = self.current
        current.stop(grace)
        self.thread.join()


def run_pod(
    name: str,
    hostname: str,
    metadata: Mapping[str, Any],
    spec: Mapping[str, Any],
    env: PodEnvironment,
    stop: threading.Event,
) -> PodResult:
    """Run a pod to its end (or until `stop` is set) and say what happened.

    Args:
        name: the pod's name.
        hostname: its hostname (an Indexed Job's pods get `<job>-<index>`).
        metadata: the pod template's metadata with what the Job controller added.
        spec: the pod spec.
        env: the cluster and node it runs on.
        stop: set by the Job controller to delete the pod (its containers get SIGTERM).
    """
    network = env.network.allocate()
    result = PodResult(
        name,
        hostname,
        network.ip,
        dict(metadata.get("labels") or {}),
        dict(metadata.get("annotations") or {}),
        started_at=time.monotonic(),
    )
    pod_dir = env.workdir / "pods" / name
    pod_dir.mkdir(parents=True)
    try:
        fields = PodFields(
            name,
            env.namespace,
            f"uid-{name}",
            result.labels,
            result.annotations,
            network.ip,
            NODE_NAME,
            spec.get("serviceAccountName", "default"),
        )
        try:
            volumes = _prepare_volumes(pod_dir, spec, env)
        except ContainerConfigError as exc:
            result.reason = f"FailedMount: {exc}"
            return result
        settings = _Settings(result, spec, env, network, volumes, fields, pod_dir)
        _PodRun(spec, settings, stop).run()
        return result
    finally:
        result.finished_at = time.monotonic()
        env.network.release(network)


class _PodRun:
    def __init__(self, spec: Mapping[str, Any], settings: _Settings, stop: threading.Event) -> None:
        self.spec = spec
        self.settings = settings
        self.stop = stop
        self.result = settings.pod
        self.sidecars: list[_Sidecar] = []
        self.grace = _grace(spec)

    def _status(self, spec: Mapping[str, Any], kind: ContainerKind) -> ContainerStatus:
        status = ContainerStatus(spec["name"], kind)
        self.result.containers[spec["name"]] = status
        return status

    def _start(self, spec: Mapping[str, Any], kind: ContainerKind) -> _Run | None:
        status = self._status(spec, kind)
        try:
            return _Run(spec, status, self.settings)
        except (ContainerConfigError, LookupError) as exc:
            status.error = f"{type(exc).__name__}: {exc}"
            self.result.reason = f"CreateContainerConfigError: {spec['name']}: {exc}"
            return None

    def run(self) -> None:
        try:
            if self._init_containers():
                self._main_containers()
        finally:
            for sidecar in reversed(self.sidecars):
                sidecar.stop(self.grace)

    def _init_containers(self) -> bool:
        for spec in self.spec.get("initContainers") or []:
            if spec.get("restartPolicy") == "Always":
                status = self._status(spec, "sidecar")
                try:
                    sidecar = _Sidecar(spec, status, self.settings)
                except (ContainerConfigError, LookupError) as exc:
                    status.error = str(exc)
                    self.result.reason = f"CreateContainerConfigError: {spec['name']}: {exc}"
                    return False
                self.sidecars.append(sidecar)
                if not sidecar.wait_started(self.stop):
                    self.result.reason = "Terminated while waiting for a sidecar's startup probe"
                    return False
                continue
            run = self._start(spec, "init")
            if run is None:
                return False
            code = self._wait([run])[0]
            if code != 0:
                self.result.reason = f"Init:{'Error' if code is not None else 'Terminated'} ({spec['name']} exit {code})"
                return False
        return True

    def _main_containers(self) -> None:
        runs = [self._start(spec, "main") for spec in self.spec["containers"]]
        started = [run for run in runs if run is not None]
        if len(started) != len(runs):
            for run in started:
                run.stop(self.grace)
            return
        codes = self._wait(started)
        if all(code == 0 for code in codes):
            self.result.phase = "Succeeded"
            self.result.reason = "Completed"
        elif not self.result.reason:
            failed = [
                f"{r.spec['name']} exit {c}" for r, c in zip(started, codes, strict=True) if c != 0
            ]
            self.result.reason = "Error (" + ", ".join(failed) + ")"

    def _wait(self, runs: list[_Run]) -> list[int | None]:
        """Wait for every run to end; on `stop`, terminate them (the pod is being deleted)."""
        while True:
            codes = [
                run.wait(0.05) if not run.ended.is_set() else run.status.exit_code for run in runs
            ]
            if all(code is not None for code in codes):
                return codes
            if self.stop.is_set():
                self.result.reason = "Terminated by the Job controller"
                for run in runs:
                    run.stop(self.grace)
                return [run.status.exit_code for run in runs]
