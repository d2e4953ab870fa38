"""The local backend end to end through its Python API, on the local-basic test audit.

One module-scoped run is shared by the tests that read what it wrote; the tests
after it (no-op re-run, changed parameter, --force) build on its store, in order.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import socket
from dataclasses import dataclass
from pathlib import Path

import pyarrow.dataset as pads
import pytest
from local_backend_helpers import copy_project, edit_spec, git_commit_all, load_graph

from compiler.backends.local import RunEvent, RunResult, run_local
from schemas import Store

KEYS = [
    "Dataset/phrases",
    "Evaluation/phrases-through-length",
    "Method/mean-score",
    "Method/label-counts",
    "Method/case",
]


@dataclass
class FirstRun:
    project: Path
    store: Path
    commit: str
    result: RunResult
    events: list[RunEvent]


@pytest.fixture(scope="module")
def first(module_tmp: Path) -> FirstRun:
    project = copy_project(module_tmp / "project")
    commit = git_commit_all(project)
    store = module_tmp / "store"
    events: list[RunEvent] = []
    result = run_local(load_graph(project), store, jobs=2, on_event=events.append)
    return FirstRun(project, store, commit, result, events)


def _statuses(result: RunResult) -> dict[str, str]:
    return {n.key: n.status for n in result.nodes}


def test_first_run_runs_every_workflow_node_in_dependency_order(first: FirstRun) -> None:
    failures = {n.key: n.error for n in first.result.nodes if n.status != "ran"}
    assert failures == {}
    assert set(_statuses(first.result)) == set(KEYS)
    order = [n.key for n in first.result.nodes]
    assert order.index("Dataset/phrases") < order.index("Evaluation/phrases-through-length")
    assert order.index("Method/mean-score") < order.index("Method/case")
    assert first.result.ok and not first.result.nothing_to_do


def test_manifests_record_provenance(first: FirstRun) -> None:
    store = Store.open(first.store)
    graph = load_graph(first.project)
    evaluation = graph["phrases-through-length"]
    manifest = store.read_manifest(evaluation.store_path)
    assert manifest is not None and manifest.status == "complete"
    assert manifest.id == evaluation.id
    assert manifest.spec == evaluation.resource.model_dump(mode="json")
    # Transitive configuration nodes are provenance too: the model and its module.
    assert manifest.upstream == {
        graph[n].key: graph[n].id
        for n in ("phrases", "toy-model", "length-model", "length-service")
    }
    assert manifest.rows == 24
    assert manifest.metrics["errors"] == 0
    assert manifest.metrics["requests"] >= 6  # 24 rows in batches of 4
    assert (
        manifest.model_revision is not None and "modules/model@sha256:" in manifest.model_revision
    )
    assert manifest.git_commit == first.commit
    assert manifest.auditc_version == importlib.metadata.version("auditc")
    assert manifest.log == "_logs/evaluation.log"
    assert (first.store / evaluation.store_path / "_logs" / "evaluation.log").is_file()
    # Every file of the node is listed with its size and sha256: the data and the logs.
    node_dir = first.store / evaluation.store_path
    assert set(manifest.outputs) == {
        p.relative_to(node_dir).as_posix()
        for p in node_dir.rglob("*")
        if p.is_file() and p.name != "_manifest.json"
    }
    assert {f for f in manifest.outputs if not f.startswith("_logs/")} == {
        f for f in manifest.outputs if f.startswith("part-") and f.endswith(".parquet")
    }
    assert {"_logs/evaluation.log", "_logs/server-length-service-0.log"} <= set(manifest.outputs)
    for relative, digest in manifest.outputs.items():
        data = (node_dir / relative).read_bytes()
        assert (digest.size, digest.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert manifest.finished_at >= manifest.started_at

    dataset = store.read_manifest(graph["phrases"].store_path)
    assert dataset is not None and dataset.rows == 24
    assert dataset.input_files == graph["phrases"].files
    assert dataset.model_revision is None


def test_evaluation_output_holds_every_row_once(first: FirstRun) -> None:
    graph = load_graph(first.project)
    parts = Store.open(first.store).open_dataset(graph["phrases-through-length"].store_path)
    table = parts.to_table()
    assert table.num_rows == 24
    assert sorted(table.column("_index_").to_pylist()) == list(range(24))
    assert table.column("_error_").null_count == 24
    phrases = pads.dataset(graph.root / "data" / "phrases.jsonl", format="json").to_table()
    expected = {i: min(len(t) / 40, 1.0) for i, t in enumerate(phrases.column("text").to_pylist())}
    got = dict(
        zip(table.column("_index_").to_pylist(), table.column("score").to_pylist(), strict=True)
    )
    assert got == pytest.approx(expected)


def test_safety_case_has_report_and_scores(first: FirstRun) -> None:
    store = Store.open(first.store)
    graph = load_graph(first.project)
    case = first.result["case"]
    assert case.report == str(first.store / graph["case"].store_path / "_case" / "index.html")
    assert Path(case.report).is_file()
    scores = store.read_scores(graph["case"].store_path)
    mean = store.open_dataset(graph["mean-score"].store_path).to_table().column("mean")[0].as_py()
    assert [s.name for s in scores.scores] == ["mean_score"]
    assert scores.scores[0].value == pytest.approx(mean)
    assert first.result["mean-score"].report is None


def test_progress_events_and_service_lifetime(first: FirstRun) -> None:
    starts = [e.key for e in first.events if e.phase == "start"]
    finishes = [e.key for e in first.events if e.phase == "finish"]
    assert sorted(starts) == sorted(KEYS) and sorted(finishes) == sorted(KEYS)
    service = [e.message or "" for e in first.events if e.phase == "service"]
    assert len(service) == 2 and service[0].startswith("started at http://127.0.0.1:")
    assert service[1] == "stopped"
    port = int(service[0].rsplit(":", 1)[1])
    with socket.socket() as sock:  # the server is gone once its evaluation is done
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_second_run_with_nothing_changed_runs_nothing(first: FirstRun) -> None:
    manifests = sorted(first.store.glob("*/*/*/_manifest.json"))
    before = {p: p.stat().st_mtime_ns for p in manifests}
    events: list[RunEvent] = []
    again = run_local(load_graph(first.project), first.store, on_event=events.append)
    assert _statuses(again) == dict.fromkeys(KEYS, "kept")
    assert again.nothing_to_do and again.ok
    assert events == []
    assert {p: p.stat().st_mtime_ns for p in manifests} == before
    assert again["case"].report == first.result["case"].report


def test_changed_parameter_reruns_exactly_that_method_and_downstream(first: FirstRun) -> None:
    from compiler import Baseline, plan

    edit_spec(first.project, "parameters: {threshold: 0.5}", "parameters: {threshold: 0.25}")
    graph = load_graph(first.project)
    planned = plan(graph, Baseline.from_manifests(Store.open(first.store).manifests(), "store"))
    rerun = run_local(graph, first.store)
    ran = {n.key for n in rerun.nodes if n.status == "ran"}
    assert ran == {"Method/mean-score", "Method/case"}
    assert {n.key for n in rerun.nodes if n.status == "kept"} == set(KEYS) - ran
    assert ran == {e.key for e in planned.entries if e.action in ("create", "re-run")}


def test_force_reruns_only_the_selected_nodes(first: FirstRun) -> None:
    graph = load_graph(first.project)
    result = run_local(graph, first.store, force=True, selected=["label-counts"])
    assert _statuses(result) == {"Dataset/phrases": "kept", "Method/label-counts": "ran"}


def test_failed_nodes_are_recorded_and_independent_nodes_finish(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model whose import never returns: its server never becomes ready.
    monkeypatch.setenv("AUDITC_TEST_MODEL_HANG", "1")
    edit_spec(project, "timeouts: {ready: 60}", "timeouts: {ready: 2}")
    edit_spec(
        project,
        "inputs: {phrases: phrases}\n  parameters: {fail: false}",
        "inputs: {phrases: phrases}\n  parameters: {fail: true}",
    )
    graph = load_graph(project)
    store = Store.open(tmp_path / "store")
    result = run_local(graph, store)

    assert _statuses(result) == {
        "Dataset/phrases": "ran",
        "Evaluation/phrases-through-length": "failed",
        "Method/mean-score": "skipped",
        "Method/label-counts": "failed",
        "Method/case": "skipped",
    }
    assert not result.ok
    evaluation = result["phrases-through-length"]
    assert evaluation.error is not None and "was not ready after 2 s" in evaluation.error
    assert "server-length-service-0.log" in evaluation.error
    assert evaluation.log is not None and Path(evaluation.log).is_file()
    method = result["label-counts"]
    assert method.error is not None and "label_counts was asked to fail" in method.error
    assert (
        method.log is not None and "label_counts was asked to fail" in Path(method.log).read_text()
    )
    assert result["case"].error == "upstream Evaluation/phrases-through-length failed"
    assert result["mean-score"].error == "upstream Evaluation/phrases-through-length failed"

    for name in ("phrases-through-length", "label-counts"):
        manifest = store.read_manifest(graph[name].store_path)
        assert manifest is not None and manifest.status == "failed"
        assert manifest.error == result[name].error
    for name in ("phrases-through-length", "mean-score", "label-counts", "case"):
        assert not store.is_complete(graph[name].store_path)
    assert store.read_manifest(graph["case"].store_path) is None


def test_a_failed_evaluation_that_a_rerun_cannot_change_says_to_force(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edit_spec(
        project,
        "timeouts: {ready: 60}",
        "timeouts: {ready: 60}\n  retries: {max_attempts: 1}\n  errors: {max_error_fraction: 0.1}",
    )
    graph = load_graph(project)
    store = Store.open(tmp_path / "store")
    monkeypatch.setenv("AUDITC_TEST_MODEL_FAIL", "1")
    hint = "to send every row again: auditc run --select phrases-through-length --force"
    for _ in range(2):  # the plain re-run resumes with nothing to send: the same failure
        failed = run_local(graph, store, selected=["phrases-through-length"])
        evaluation = failed["phrases-through-length"]
        assert evaluation.status == "failed" and evaluation.rows == 24
        assert evaluation.error is not None and "more than errors.max_error_fraction" in (
            evaluation.error
        )
        assert hint in evaluation.error

    monkeypatch.delenv("AUDITC_TEST_MODEL_FAIL")
    forced = run_local(graph, store, selected=["phrases-through-length"], force=True)
    assert forced["phrases-through-length"].status == "ran"
    assert forced["phrases-through-length"].metrics["errors"] == 0


def test_a_failed_evaluation_that_a_rerun_can_change_does_not_say_to_force(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edit_spec(project, "timeouts: {ready: 60}", "timeouts: {ready: 60, total: 2}")
    monkeypatch.setenv("AUDITC_TEST_MODEL_DELAY", "1")
    result = run_local(load_graph(project), tmp_path / "store", selected=["phrases-through-length"])
    evaluation = result["phrases-through-length"]
    assert evaluation.status == "failed" and evaluation.error is not None
    assert "timeouts.total" in evaluation.error and "--force" not in evaluation.error


def test_shards_spread_over_replicas_and_write_every_row_once(
    project: Path, tmp_path: Path
) -> None:
    edit_spec(project, "timeouts: {ready: 60}", "timeouts: {ready: 60}\n  shards: 3\n  replicas: 2")
    graph = load_graph(project)
    events: list[RunEvent] = []
    result = run_local(
        graph, tmp_path / "store", selected=["phrases-through-length"], on_event=events.append
    )
    assert _statuses(result) == {
        "Dataset/phrases": "ran",
        "Evaluation/phrases-through-length": "ran",
    }
    started = next(e.message for e in events if e.phase == "service" and e.message != "stopped")
    assert started is not None and started.count("http://127.0.0.1:") == 2
    node_dir = tmp_path / "store" / graph["phrases-through-length"].store_path
    logs = sorted(p.name for p in (node_dir / "_logs").iterdir())
    assert logs == [
        "evaluation-0.log",
        "evaluation-1.log",
        "evaluation-2.log",
        "server-length-service-0.log",
        "server-length-service-1.log",
    ]
    table = (
        Store.open(tmp_path / "store")
        .open_dataset(graph["phrases-through-length"].store_path)
        .to_table()
    )
    assert sorted(table.column("_index_").to_pylist()) == list(range(24))
    assert result["phrases-through-length"].rows == 24
