"""Inference services as local processes: start, wait until ready, share, stop.

`start_servers` runs `python -m runners.inference` once per replica on 127.0.0.1;
`ServicePool` shares those servers among the evaluations of one run and stops
them once no pending evaluation needs them; `start_service` is the same start as
a context manager, for `auditc serve` and `auditc infer`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas import BackendError, InferenceError, InferenceService

from ._configs import server_config
from ._processes import Cancelled, ChildProcess, LaunchOptions, Supervisor
from ._workdirs import work_dir

if TYPE_CHECKING:
    from ..._resolve import Graph

__all__ = [
    "LOCAL_RUNNERS",
    "RunningService",
    "ServicePool",
    "infer_one",
    "start_servers",
    "start_service",
    "stop_servers",
]

logger = logging.getLogger(__name__)

LOCAL_RUNNERS = ("python", "huggingface")
"""Runner kinds the local backend starts itself; `external` needs no process."""

HOST = "127.0.0.1"


@dataclass
class RunningService:
    """The replicas of one service: their base URLs, processes and logs."""

    service: str
    urls: list[str]
    processes: list[ChildProcess] = field(default_factory=list)
    logs: list[Path | None] = field(default_factory=list)
    """Each replica's log file; None where it shares this process's stderr."""


def start_servers(
    graph: Graph,
    service_name: str,
    *,
    supervisor: Supervisor,
    replicas: int = 1,
    ports: list[int] | None = None,
    log_dir: Path | None,
    config_dir: Path,
    ready_timeout: float,
    on_wait: Callable[[str], None] | None = None,
) -> RunningService:
    """Start `replicas` servers of a service and wait until each answers `/health`.

    Args:
        graph: The resolved graph holding the service, its model and modules.
        service_name: The InferenceService to start.
        supervisor: Starts and stops the processes.
        replicas: Server processes to start.
        ports: One port per replica; free ports are picked when None.
        log_dir: Where `server-<name>-<i>.log` go; None shares this process's stderr.
        config_dir: Where the servers' config files are written.
        ready_timeout: Seconds each server has to become ready.
        on_wait: Told every few seconds how a wait for an external service goes.

    Raises:
        BackendError: the runner kind cannot run on this machine (vllm, container).
        InferenceError: a port is taken, or a server exited or never became ready.
    """
    service = graph[service_name].resource
    assert isinstance(service, InferenceService)
    runner = service.spec.runner
    if runner.kind == "external":
        url = runner.url.rstrip("/")
        _wait_external(service_name, url, runner.health_path, ready_timeout, on_wait)
        return RunningService(service_name, [url])
    if runner.kind not in LOCAL_RUNNERS:
        raise BackendError(
            f"InferenceService/{service_name}: runner {runner.kind!r} cannot run on the local "
            f"backend, which starts only {' and '.join(LOCAL_RUNNERS)} runners; run this audit "
            "on Kubernetes (auditc compile --target kubernetes), or serve the model yourself "
            "and declare the service with runner 'external' and its URL"
        )
    chosen = ports if ports is not None else [_free_port() for _ in range(replicas)]
    for port in chosen:
        _check_port(port)
    running = RunningService(service_name, [])
    try:
        for i, port in enumerate(chosen):
            _spawn_server(graph, running, i, port, supervisor, log_dir, config_dir)
        for proc, url, log in zip(running.processes, running.urls, running.logs, strict=True):
            _wait_ready(service_name, url, proc, log, ready_timeout)
    except BaseException:
        stop_servers(running, supervisor)
        raise
    return running


def stop_servers(running: RunningService, supervisor: Supervisor) -> None:
    """Stop every server process of a service (SIGTERM, then SIGKILL)."""
    for proc in running.processes:
        supervisor.stop(proc)


def _spawn_server(
    graph: Graph,
    running: RunningService,
    replica: int,
    port: int,
    supervisor: Supervisor,
    log_dir: Path | None,
    config_dir: Path,
) -> None:
    name = running.service
    config = server_config(graph, name, port)
    config_file = config_dir / f"server-{name}-{replica}.json"
    config_file.write_text(config.model_dump_json())
    log = log_dir / f"server-{name}-{replica}.log" if log_dir is not None else None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "runners.inference", str(config_file)]
    running.processes.append(supervisor.spawn(argv, log=log, name=f"auditc-server-{replica}"))
    running.urls.append(f"http://{HOST}:{port}")
    running.logs.append(log)


def _wait_ready(
    service: str,
    url: str,
    proc: ChildProcess | None,
    log: Path | None,
    timeout: float,
) -> None:
    from runners.inference import wait_ready

    try:
        wait_ready(url, timeout, process=proc, log=log)
    except InferenceError as exc:
        raise InferenceError(f"InferenceService/{service}: {exc}") from exc


def _wait_external(
    service: str,
    url: str,
    health_path: str | None,
    timeout: float,
    on_wait: Callable[[str], None] | None,
) -> None:
    """Wait (seconds, by default) until an external service answers: its health path, else
    anything at its URL; a service that is down fails its evaluations with the URL and the
    last error, instead of every row failing one by one."""
    from runners.evaluation import ServiceNotReadyError, wait_for_service

    target = url + (health_path or "")

    def progress(waited: float, last: str) -> None:
        if on_wait is not None:
            on_wait(f"waiting for {target}: {waited:.0f} of {timeout:g} s (last error: {last})")

    try:
        wait_for_service(target, timeout, any_status=health_path is None, on_progress=progress)
    except ServiceNotReadyError as exc:
        raise InferenceError(f"InferenceService/{service}: {exc}") from exc


def _free_port() -> int:
    from runners.inference import free_port

    port: int = free_port()
    return port


def _check_port(port: int) -> None:
    """Fail early and clearly when a requested port is taken, before starting anything."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InferenceError(
                    f"port {port} on {HOST} is already in use; choose another port "
                    "(or leave the port out to pick a free one)"
                ) from exc
            raise InferenceError(f"cannot use port {port} on {HOST}: {exc}") from exc


@contextlib.contextmanager
def start_service(
    graph: Graph,
    service_name: str,
    *,
    replicas: int = 1,
    ports: list[int] | None = None,
    log_dir: Path | None = None,
    ready_timeout: float = 600.0,
) -> Iterator[RunningService]:
    """Run a service's servers for the duration of a `with` block.

    Example:
        >>> with start_service(graph, "offensive-filter", replicas=2) as running:  # doctest: +SKIP
        ...     print(running.urls)

    Raises:
        BackendError: the runner kind cannot run locally.
        InferenceError: a port is taken, or a server did not become ready.
    """
    with (
        work_dir("serve") as tmp,
        Supervisor(LaunchOptions(tmp_dir=tmp, remove=[tmp])) as supervisor,
    ):
        try:
            running = start_servers(
                graph,
                service_name,
                supervisor=supervisor,
                replicas=replicas,
                ports=ports,
                log_dir=log_dir,
                config_dir=tmp,
                ready_timeout=ready_timeout,
            )
            yield running
        finally:
            supervisor.cancel()


ServiceKey = tuple[str, int]
"""(service name, replicas)."""


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: RunningService | None = None
    error: BaseException | None = None
    users: int = 0
    pending: int = 0


class ServicePool:
    """The services of one run, shared by the evaluations that use them.

    Each key starts with the number of evaluations that will use it; a service
    starts when the first of them needs it and stops when the last one has finished
    (or been skipped). Thread-safe.
    """

    def __init__(
        self,
        graph: Graph,
        supervisor: Supervisor,
        pending: dict[ServiceKey, int],
        config_dir: Path,
        notify: Callable[[str, str], None],
    ) -> None:
        self._graph = graph
        self._supervisor = supervisor
        self._config_dir = config_dir
        self._notify = notify
        self._lock = threading.Lock()
        self._entries = {key: _Entry(pending=n) for key, n in pending.items()}

    @contextlib.contextmanager
    def use(self, key: ServiceKey, *, log_dir: Path, ready_timeout: float) -> Iterator[list[str]]:
        """The base URLs of the service's replicas, started if needed, for one evaluation.

        Raises:
            BackendError, InferenceError: the service could not be started (every
                evaluation that needs it gets the same error).
        """
        entry = self._entries[key]
        try:
            with entry.lock:
                if entry.error is not None:
                    raise entry.error
                if entry.running is None:
                    entry.running = self._start(key, entry, log_dir, ready_timeout)
                entry.users += 1
            try:
                yield entry.running.urls
            finally:
                with entry.lock:
                    entry.users -= 1
        finally:
            self.done(key)

    def done(self, key: ServiceKey) -> None:
        """One evaluation of `key` will not need it anymore (finished or skipped)."""
        entry = self._entries[key]
        with entry.lock:
            entry.pending -= 1
            if entry.pending <= 0 and entry.users == 0 and entry.running is not None:
                self._stop(entry)

    def stop_all(self) -> None:
        """Stop every running service (the end of a run, or an interrupted one)."""
        for entry in self._entries.values():
            with entry.lock:
                if entry.running is not None:
                    self._stop(entry)

    def _start(
        self, key: ServiceKey, entry: _Entry, log_dir: Path, ready_timeout: float
    ) -> RunningService:
        name, replicas = key
        try:
            running = start_servers(
                self._graph,
                name,
                supervisor=self._supervisor,
                replicas=replicas,
                log_dir=log_dir,
                config_dir=self._config_dir,
                ready_timeout=ready_timeout,
                on_wait=lambda text: self._notify(f"InferenceService/{name}", text),
            )
        except Cancelled:
            raise
        except (BackendError, InferenceError) as exc:
            entry.error = exc
            raise
        if running.processes:
            urls = ", ".join(running.urls)
            self._notify(f"InferenceService/{name}", f"started at {urls}")
        return running

    def _stop(self, entry: _Entry) -> None:
        assert entry.running is not None
        running, entry.running = entry.running, None
        if running.processes:
            stop_servers(running, self._supervisor)
            self._notify(f"InferenceService/{running.service}", "stopped")


def infer_one(
    graph: Graph,
    service_name: str,
    row: dict[str, Any],
    *,
    url: str | None = None,
    ready_timeout: float = 600.0,
) -> dict[str, Any]:
    """Send one dataset row through a service's adapters and return its output row.

    The service is started for this one row unless `url` names a running server.

    Example:
        >>> infer_one(graph, "offensive-filter", {"text": "have a nice day"})  # doctest: +SKIP
        {'score': 0.0213}

    Raises:
        InferenceError: the service could not be started or reached, or the API key
            variable of an external service is not set.
        BackendError: the runner kind cannot run locally.
        AuditcError: the row does not fit the service's adapters.
    """
    from runners.evaluation import infer_row, read_api_key

    service = graph[service_name].resource
    assert isinstance(service, InferenceService)
    runner = service.spec.runner
    api_key = read_api_key(runner.api_key_env if runner.kind == "external" else None)
    if url is not None:
        output: dict[str, Any] = infer_row(service, url, row, api_key)
        return output
    with (
        work_dir("infer") as logs,
        start_service(graph, service_name, log_dir=logs, ready_timeout=ready_timeout) as up,
    ):
        output = infer_row(service, up.urls[0], row, api_key)
    return output
