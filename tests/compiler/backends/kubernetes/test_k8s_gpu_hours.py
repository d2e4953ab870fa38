"""GPU-hours before anything runs: `auditc plan` estimates, and the stack's budget.

An Evaluation's time is rows ÷ shards ÷ a throughput the service declares or that the
store measured on the service's last run; its GPU-hours are GPUs × shards × that time;
its deadline bounds it. `compile` (and the Pulumi program) fail when the evaluations
not yet in the store exceed `auditc:budget.gpuHours`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from k8s_helpers import STACK, copy_project, load_graph

from compiler.cli.main import main
from schemas import Manifest, Store

LLM = "Evaluation/phrases-llm"


def _manifest(kind: str, name: str, node_id: str, **fields: object) -> Manifest:
    end = datetime(2026, 1, 1, tzinfo=UTC)
    duration = float(fields.pop("duration_s", 10.0))  # type: ignore[arg-type]
    return Manifest.model_validate(
        {
            "kind": kind,
            "name": name,
            "id": node_id,
            "status": "complete",
            "spec": {},
            "auditc_version": "0",
            "started_at": end - timedelta(seconds=duration),
            "finished_at": end,
            "duration_s": duration,
            **fields,
        }
    )


def _plan(project: Path, store: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    main(["-C", str(project), "plan", "--store", str(store), *extra])
    return capsys.readouterr().out


def test_plan_shows_gpu_hours_from_a_measured_throughput(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_project(tmp_path / "project")
    graph = load_graph(project)
    store = tmp_path / "store"
    # Nothing measured yet: only the deadline bounds the cost (4 shards × 2 GPUs × 1.33 h).
    text = _plan(project, store, capsys)
    assert "GPU-hours: 0 estimated, at most 10.7 by the deadlines (1 evaluation(s)" in text
    assert f"  {LLM}: 8 GPU(s) × ? h = ? GPU-h (at most 10.7); no throughput" in text

    # An earlier run of the same service, on another dataset: 160 rows in 80 s over 4 shards.
    service = graph["llm-vllm"]
    earlier = _manifest(
        "Evaluation",
        "older-llm-eval",
        "e" * 20,
        rows=160,
        duration_s=80.0,
        spec={"kind": "Evaluation", "spec": {"shards": 4}},
        upstream={f"InferenceService/{service.name}": service.id},
    )
    Store.open(store / "evaluation" / "older-llm-eval" / earlier.id).write_manifest("", earlier)
    text = _plan(project, store, capsys)
    # 8 rows × 2 replications ÷ 4 shards ÷ (160 / 80 / 4 = 0.5 rows/s) = 8 s per pod.
    hours = 8 / 3600
    line = next(line for line in text.splitlines() if line.startswith(f"  {LLM}:"))
    # Below 0.01 h, two significant digits: seconds of work still show.
    assert line.startswith(f"  {LLM}: 8 GPU(s) × 0.0022 h = 0.02 GPU-h")
    assert "16 rows ÷ 4 shard(s) ÷ 0.5 rows/s (measured on Evaluation/older-llm-eval" in line
    # The CPU services cost CPU-hours; the external one nothing.
    assert "Evaluation/phrases-length: 1 CPU(s)" in text
    assert "Evaluation/phrases-hosted: 0 CPU(s)" in text

    markdown = _plan(project, store, capsys, "--format", "markdown")
    assert "| evaluation | GPUs | hours (est.) | GPU-hours | at most | how |" in markdown
    assert f"| `{LLM}` | 8 | 0.0022 | 0.02 | 10.7 |" in markdown
    plan = json.loads(_plan(project, store, capsys, "--format", "json"))
    (cost,) = [c for c in plan["costs"] if c["key"] == LLM]
    assert cost["gpus"] == 8 and cost["hours"] == pytest.approx(hours)


def test_a_declared_throughput_wins_and_changes_no_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_project(tmp_path / "project")
    before = load_graph(project)
    services = project / "audits" / "services.yaml"
    services.write_text(
        services.read_text().replace('    cpu: "4"\n', '    cpu: "4"\n    throughput: 0.25\n')
    )
    after = load_graph(project)
    assert after["llm-vllm"].resource.spec.resources.throughput == 0.25
    assert {n.key: n.id for n in after} == {n.key: n.id for n in before}, "a hint, not a result"
    text = _plan(project, tmp_path / "store", capsys)
    # 16 rows ÷ 4 shards ÷ 0.25 rows/s = 16 s per pod, × 8 GPUs.
    assert "8 GPU(s) × 0.0044 h" in text and "(declared 0.25 rows/s)" in text


def _budget_stack(project: Path, store: Path, gpu_hours: float) -> None:
    (project / "stacks").mkdir(exist_ok=True)
    config = {
        "auditc:store": {"uri": f"file://{store}"},
        "auditc:budget": {"gpuHours": gpu_hours},
    }
    (project / "stacks" / "Pulumi.ci.yaml").write_text(json.dumps({"config": config}))


def test_compile_fails_when_a_deployment_exceeds_the_gpu_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_project(tmp_path / "project")
    store = tmp_path / "store"
    store.mkdir()
    _budget_stack(project, store, 5)
    out = tmp_path / "out"
    args = ["-C", str(project), "compile", "--stack", "ci", "--out", str(out), "--no-validate"]
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 1, "like a failed gate"
    error = capsys.readouterr().err
    assert "auditc:budget.gpuHours is 5, but this deployment would spend 10.7 GPU-hours" in error
    assert f"{LLM}: 8 GPU(s) × 1.33 h (its deadline" in error
    assert not out.exists(), "nothing is written"

    # Once the evaluation is complete in the store, the deployment spends nothing on it.
    graph = load_graph(project)
    node = graph["phrases-llm"]
    done = _manifest("Evaluation", node.name, node.id, rows=16)
    Store.open(store / node.store_path).write_manifest("", done)
    main(args)
    assert "GPU-hours of this deployment: 0 of a budget of 5" in capsys.readouterr().err


def test_the_gpus_counted_are_the_gpus_the_pods_ask_for(tmp_path: Path) -> None:
    from compiler._estimate import estimate_costs
    from compiler.backends.kubernetes import KubernetesConfig, render_manifests

    graph = load_graph(copy_project(tmp_path / "project"))
    rendering = render_manifests(graph, KubernetesConfig.model_validate(STACK))
    asked: dict[str, int] = {}
    for resource in rendering.resources:
        labels = resource.manifest["metadata"]["labels"]
        if resource.kind != "Job" or labels.get("auditc.io/role") != "evaluation":
            continue
        spec = resource.manifest["spec"]
        pod = spec["template"]["spec"]
        per_pod = sum(
            int(c["resources"]["limits"].get("nvidia.com/gpu", 0))
            for c in [*pod.get("initContainers", []), *pod["containers"]]
        )
        asked[f"Evaluation/{labels['auditc.io/name']}"] = per_pod * spec["parallelism"]
    costs = estimate_costs(graph, asked)
    assert {c.key: c.gpus for c in costs} == asked


def test_a_measured_start_up_is_paid_once_per_pod(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_project(tmp_path / "project")
    service = load_graph(project)["llm-vllm"]
    store = tmp_path / "store"
    # 160 rows over 4 shards in 80 s, of which requests were in flight for 40 s: each pod
    # spent 40 s starting (server, model) and sent 40 rows in 40 s (1 row/s).
    earlier = _manifest(
        "Evaluation",
        "older-llm-eval",
        "e" * 20,
        rows=160,
        duration_s=80.0,
        metrics={"in_flight_s": 40.0},
        spec={"kind": "Evaluation", "spec": {"shards": 4}},
        upstream={f"InferenceService/{service.name}": service.id},
    )
    Store.open(store / "evaluation" / "older-llm-eval" / earlier.id).write_manifest("", earlier)
    line = next(
        line for line in _plan(project, store, capsys).splitlines() if line.startswith(f"  {LLM}:")
    )
    # 40 s start-up + 16 rows ÷ 4 shards ÷ 1 row/s = 44 s per pod.
    assert line.startswith(f"  {LLM}: 8 GPU(s) × 0.01 h = 0.10 GPU-h"), line
    assert "40 s + 16 rows ÷ 4 shard(s) ÷ 1 rows/s" in line
    assert "40.0 s sending, 40.0 s start-up" in line
