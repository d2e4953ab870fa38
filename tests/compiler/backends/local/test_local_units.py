"""Parts of the local backend that need no full run: keeping, selection, services, processes."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from local_backend_helpers import edit_spec, load_graph

from compiler.backends.local import RunEvent, run_local, start_service
from compiler.backends.local._processes import Cancelled, Supervisor
from schemas import BackendError, GraphError, InferenceError, Manifest, Store, UsageError


def _complete_all(graph_root: Path, store: Store) -> None:
    graph = load_graph(graph_root)
    now = datetime.now(UTC)
    for node in graph:
        if node.is_workflow:
            store.write_manifest(
                node.store_path,
                Manifest(
                    kind=node.kind, name=node.name, id=node.id, status="complete",
                    spec=node.resource.model_dump(mode="json"), auditc_version="test",
                    started_at=now, finished_at=now, duration_s=0.5, rows=3,
                    log="_logs/step.log",
                ),
            )  # fmt: skip


def test_complete_nodes_are_kept_without_starting_anything(project: Path, tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    _complete_all(project, store)
    events: list[RunEvent] = []
    result = run_local(load_graph(project), store, on_event=events.append)
    assert result.nothing_to_do and result.ok and events == []
    assert [n.status for n in result.nodes] == ["kept"] * 5
    kept = result["phrases-through-length"]
    assert kept.rows == 3 and kept.duration_s == 0.5
    assert kept.log == str(
        tmp_path / "store" / Path(kept.uri).relative_to(tmp_path / "store") / "_logs/step.log"
    )
    assert result["case"].report is not None
    assert result["case"].report.endswith("/_case/index.html")


def test_a_failed_manifest_is_run_again(project: Path, tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    _complete_all(project, store)
    graph = load_graph(project)
    node = graph["label-counts"]
    failed = store.read_manifest(node.store_path)
    assert failed is not None
    store.write_manifest(node.store_path, failed.model_copy(update={"status": "failed"}))
    result = run_local(graph, store, selected=["label-counts"])
    statuses = {n.key: n.status for n in result.nodes}
    # The dataset's manifest is kept; the failed method is tried again (and fails
    # for real here: the synthetic dataset has a manifest but no parts).
    assert statuses == {"Dataset/phrases": "kept", "Method/label-counts": "failed"}
    again = store.read_manifest(node.store_path)
    assert again is not None and again.auditc_version != "test" and again.error


def test_bad_arguments_are_usage_errors(project: Path, tmp_path: Path) -> None:
    graph = load_graph(project)
    with pytest.raises(UsageError, match=r"--jobs must be at least 1 \(got 0\)"):
        run_local(graph, tmp_path / "store", jobs=0)
    with pytest.raises(GraphError, match="no resource named 'cas' \\(did you mean 'case'\\?\\)"):
        run_local(graph, tmp_path / "store", selected=["cas"])


@pytest.mark.parametrize("runner", ["{kind: vllm}", "{kind: container, image: 'example/model:1'}"])
def test_runners_that_need_kubernetes_are_a_clear_error(project: Path, runner: str) -> None:
    edit_spec(project, "runner: {kind: python}", f"runner: {runner}")
    graph = load_graph(project)
    kind = runner.split(",")[0].removeprefix("{kind: ").rstrip("}")
    with pytest.raises(BackendError) as caught, start_service(graph, "length-service"):
        pass
    assert str(caught.value).startswith(
        f"InferenceService/length-service: runner '{kind}' cannot run on the local backend"
    )
    assert "auditc compile --target kubernetes" in str(caught.value)


def _unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_external_service_health_is_checked(project: Path) -> None:
    port = _unused_port()
    edit_spec(
        project,
        "runner: {kind: python}",
        f"runner: {{kind: external, url: 'http://127.0.0.1:{port}', health_path: /ready}}",
    )
    graph = load_graph(project)
    with (
        pytest.raises(
            InferenceError, match=rf"http://127.0.0.1:{port}/ready was not ready after 0.3 s"
        ),
        start_service(graph, "length-service", ready_timeout=0.3),
    ):
        pass


_TREE = """
import subprocess, sys, time
# A grandchild in a session of its own, as jupyter_client starts kernels.
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def test_stopping_a_step_stops_its_whole_tree(tmp_path: Path) -> None:
    supervisor = Supervisor()
    log = tmp_path / "tree.log"
    proc = supervisor.spawn([sys.executable, "-c", _TREE], log=log)
    deadline = time.monotonic() + 20
    while not log.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = psutil.Process(int(log.read_text().split()[0]))
    assert grandchild.is_running()
    supervisor.cancel(grace=2)
    assert proc.poll() is not None
    grandchild.wait(timeout=5)
    assert not psutil.pid_exists(grandchild.pid) or grandchild.status() == psutil.STATUS_ZOMBIE
    with pytest.raises(Cancelled):
        supervisor.spawn([sys.executable, "-c", "pass"], log=log)
    supervisor.close()


def test_a_step_past_its_time_limit_is_stopped(tmp_path: Path) -> None:
    with Supervisor() as supervisor:
        proc = supervisor.spawn(
            [sys.executable, "-c", "import time; time.sleep(60)"], log=tmp_path / "x.log"
        )
        started = time.monotonic()
        assert supervisor.wait(proc, timeout=0.5) is None
        assert proc.poll() is not None and time.monotonic() - started < 10
