"""`auditc status` and `auditc wait`: a deployment's Job states joined with the store.

The cluster is a small Kubernetes API server on 127.0.0.1 that serves the Jobs the
stack compiles to (`GET /apis/batch/v1/namespaces/NS/jobs?labelSelector=…`, the one call
the commands make), with the status a test gives each one; the commands reach it
through the official Kubernetes client and a kubeconfig, as they reach a real cluster.
The store is a real local store written as the commit step writes it.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from k8s_helpers import copy_project, load_graph

from compiler import Graph
from compiler.backends.kubernetes import KubernetesConfig, render_manifests
from compiler.cli.main import main
from schemas import Manifest, Store

NAMESPACE = "audits"


class FakeApi:
    """The Jobs of one namespace, served as the Kubernetes API serves them."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.selectors: list[str] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs":
                    self.send_error(404)
                    return
                selector = parse_qs(url.query).get("labelSelector", [""])[0]
                key, _, value = selector.partition("=")
                with api.lock:
                    api.selectors.append(selector)
                    items = [
                        j for j in api.jobs.values() if j["metadata"]["labels"].get(key) == value
                    ]
                    body = json.dumps(
                        {
                            "kind": "JobList",
                            "apiVersion": "batch/v1",
                            "metadata": {},
                            "items": items,
                        }
                    ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def kubeconfig(self, path: Path) -> Path:
        host, port = self.server.server_address[:2]
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "test", "cluster": {"server": f"http://{host}:{port}"}}],
                    "users": [{"name": "ci", "user": {"token": "not-a-secret"}}],
                    "contexts": [{"name": "test", "context": {"cluster": "test", "user": "ci"}}],
                    "current-context": "test",
                }
            )
        )
        return path

    def set(self, name: str, **status: Any) -> None:
        """Give Job `name` a status (`suspend=False` admits a suspended Job, as Kueue does)."""
        with self.lock:
            job = self.jobs[name]
            if "suspend" in status:
                job["spec"]["suspend"] = status.pop("suspend")
            job["status"] = status


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _deploy(project: Path, store: Path) -> tuple[Graph, dict[str, Any]]:
    """Write a stack that queues its Jobs in Kueue; return the graph and its Jobs by name."""
    stack = {
        "namespace": NAMESPACE,
        "store": {"uri": f"file://{store}"},
        "scheduling": {"queueName": "safety-audits"},
    }
    (project / "stacks").mkdir(exist_ok=True)
    (project / "stacks" / "Pulumi.ci.yaml").write_text(
        json.dumps({"config": {f"auditc:{k}": v for k, v in stack.items()}})
    )
    graph = load_graph(project)
    rendering = render_manifests(graph, KubernetesConfig.model_validate(stack))
    jobs = {r.name: copy.deepcopy(r.manifest) for r in rendering.resources if r.kind == "Job"}
    return graph, jobs


def _commit(store: Path, graph: Graph, name: str) -> None:
    """What a node's last step writes: its complete manifest."""
    node = graph[name]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    manifest = Manifest.model_validate(
        {
            "kind": node.kind,
            "name": node.name,
            "id": node.id,
            "status": "complete",
            "spec": {},
            "auditc_version": "0",
            "started_at": now,
            "finished_at": now,
            "duration_s": 1.0,
        }
    )
    Store.open(store / node.store_path).write_manifest("", manifest)


def _job(jobs: dict[str, Any], name: str, role: str) -> str:
    return next(
        n
        for n, j in jobs.items()
        if j["metadata"]["labels"]["auditc.io/name"] == name
        and j["metadata"]["labels"]["auditc.io/role"] == role
    )


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(args)  # click returns a command's exit code 0…
    except SystemExit as exc:  # …and run_cli exits with the others
        code = exc.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


def _line(out: str, key: str) -> str:
    return next(line for line in out.splitlines() if f" {key} " in line)


def test_status_joins_job_states_with_the_store(
    tmp_path: Path, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_project(tmp_path / "project")
    store = tmp_path / "store"
    graph, jobs = _deploy(project, store)
    config = api.kubeconfig(tmp_path / "kubeconfig")
    args = ["-C", str(project), "status", "--stack", "ci", "--kubeconfig", str(config)]

    # Nothing submitted yet.
    code, out, _ = _run(args, capsys)
    assert code == 0
    assert "not submitted" in _line(out, "Dataset/phrases")
    workflows = [n for n in graph if n.is_workflow]
    assert out.splitlines()[-1] == f"{len(workflows)} not submitted (of {len(workflows)} nodes)"
    assert api.selectors == ["app.kubernetes.io/managed-by=auditc"], "auditc's Jobs only"

    # `pulumi up` (asynchronous) created every Job suspended; Kueue holds them.
    api.jobs.update(copy.deepcopy(jobs))
    assert all(j["spec"]["suspend"] for j in jobs.values())
    code, out, _ = _run(args, capsys)
    assert code == 0
    assert "queued" in _line(out, "Dataset/phrases")
    assert "suspended until Kueue admits it (queue safety-audits)" in _line(out, "Dataset/phrases")

    # Kueue admits the dataset Job (un-suspends it); its pod runs, then it completes and
    # commits; the GPU evaluation is admitted and fails.
    dataset = _job(jobs, "phrases", "dataset")
    api.set(dataset, suspend=False, active=1)
    code, out, _ = _run(args, capsys)
    assert _line(out, "Dataset/phrases").split()[0] == "running"
    assert "0/1 succeeded, 1 active" in _line(out, "Dataset/phrases")

    api.set(dataset, succeeded=1, conditions=[{"type": "Complete", "status": "True"}])
    _commit(store, graph, "phrases")
    evaluation = _job(jobs, "phrases-llm", "evaluation")
    api.set(
        evaluation,
        suspend=False,
        failed=3,
        conditions=[
            {
                "type": "Failed",
                "status": "True",
                "reason": "FailedIndexes",
                "message": "Job has failed indexes",
            }
        ],
    )
    code, out, _ = _run(args, capsys)
    assert code == 1, "a failed Job fails status"
    assert _line(out, "Dataset/phrases").split()[:1] == ["complete"]
    assert "committed" in _line(out, "Dataset/phrases")
    failed = _line(out, "Evaluation/phrases-llm")
    assert failed.split()[0] == "failed"
    assert (
        f"Job {evaluation}: FailedIndexes: Job has failed indexes (0/4 succeeded, 3 failed)"
        in failed
    )

    code, out, _ = _run([*args, "--format", "json"], capsys)
    status = json.loads(out)
    by_key = {n["key"]: n for n in status["nodes"]}
    assert by_key["Dataset/phrases"]["committed"] is True
    assert by_key["Evaluation/phrases-llm"]["state"] == "failed"
    assert by_key["Evaluation/phrases-llm"]["id"] == graph["phrases-llm"].id

    # A Job deleted after its TTL: the node stays complete, from the store alone.
    del api.jobs[dataset]
    code, out, _ = _run(args, capsys)
    assert _line(out, "Dataset/phrases").split()[0] == "complete"


def test_a_job_that_succeeded_without_committing_is_a_failure(
    tmp_path: Path, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_project(tmp_path / "project")
    graph, jobs = _deploy(project, tmp_path / "store")
    api.jobs.update(copy.deepcopy(jobs))
    dataset = _job(jobs, "phrases", "dataset")
    api.set(
        dataset, suspend=False, succeeded=1, conditions=[{"type": "Complete", "status": "True"}]
    )
    code, out, _ = _run(
        [
            "-C",
            str(project),
            "status",
            "--stack",
            "ci",
            "--kubeconfig",
            str(api.kubeconfig(tmp_path / "k")),
        ],
        capsys,
    )
    assert code == 1
    assert "its Jobs succeeded, but the store holds no complete manifest" in _line(
        out, "Dataset/phrases"
    )


def _finish_everything(api: FakeApi, jobs: dict[str, Any], store: Path, graph: Graph) -> None:
    for name, job in jobs.items():
        completions = job["spec"].get("completions") or 1
        api.set(
            name,
            suspend=False,
            succeeded=completions,
            conditions=[{"type": "Complete", "status": "True"}],
        )
    for node in graph:
        if node.is_workflow:
            _commit(store, graph, node.name)


def test_wait_returns_once_every_node_is_committed(tmp_path: Path, api: FakeApi) -> None:
    project = copy_project(tmp_path / "project")
    store = tmp_path / "store"
    graph, jobs = _deploy(project, store)
    api.jobs.update(copy.deepcopy(jobs))
    # The user's command, in its own process, with the kubeconfig from the environment.
    env = {**os.environ, "KUBECONFIG": str(api.kubeconfig(tmp_path / "kubeconfig"))}
    command = [sys.executable, "-m", "compiler.cli.main", "-C", str(project), "wait"]
    command += ["--stack", "ci", "--interval", "0.2s", "--timeout", "2m"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # It waits while the Jobs are queued...
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=8)
        _finish_everything(api, jobs, store, graph)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    workflows = len([n for n in graph if n.is_workflow])
    assert f"{workflows} queued (of {workflows} nodes)" in err.splitlines()[0]
    assert err.splitlines()[-1] == f"{workflows} complete (of {workflows} nodes)"
    assert out.splitlines()[-1] == f"{workflows} complete (of {workflows} nodes)"


def test_wait_stops_at_the_first_failure_and_at_its_timeout(
    tmp_path: Path, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_project(tmp_path / "project")
    store = tmp_path / "store"
    graph, jobs = _deploy(project, store)
    api.jobs.update(copy.deepcopy(jobs))
    config = api.kubeconfig(tmp_path / "kubeconfig")
    args = ["-C", str(project), "wait", "--stack", "ci", "--kubeconfig", str(config)]

    code, _, err = _run([*args, "--timeout", "1s", "--interval", "0.2"], capsys)
    assert code == 1
    assert "error: timed out after 1 s; not complete: Dataset/phrases" in err

    evaluation = _job(jobs, "phrases-llm", "evaluation")
    api.set(
        evaluation,
        suspend=False,
        conditions=[{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}],
    )
    code, _, err = _run([*args, "--timeout", "1h"], capsys)
    assert code == 1, "no waiting for the timeout once a Job failed"
    assert f"error: Evaluation/phrases-llm failed: Job {evaluation}: DeadlineExceeded" in err

    code, _, err = _run([*args, "--timeout", "soon"], capsys)
    assert code == 2 and "'soon' is not a duration" in err


def test_status_names_a_cluster_it_cannot_reach(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_project(tmp_path / "project")
    _deploy(project, tmp_path / "store")
    config = tmp_path / "kubeconfig"
    fake = FakeApi()  # never served: the port is closed
    fake.kubeconfig(config)
    fake.server.server_close()
    code, _, err = _run(
        ["-C", str(project), "status", "--stack", "ci", "--kubeconfig", str(config)], capsys
    )
    assert code == 1, err
    assert f"error: cannot list the Jobs of namespace '{NAMESPACE}'" in err
    assert "Traceback" not in err
