"""An Inspect AI log, written by inspect_ai itself (its mockllm model, offline), imported as a
Dataset and as an Evaluation's output: every sample comes through, and an audit adds methods,
a safety case and gates on top; the imported Evaluation exports back to a log inspect_ai reads."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_helpers import REPO, auditc

from schemas import Store

WRITE_LOG = Path(__file__).parents[1] / "fixtures" / "inspect" / "write_inspect_log.py"

AUDIT = """\
kind: Dataset
name: inspect-run
spec:
  file: {path: logs/LOGNAME, format: inspect}
  columns: {sample_id: string, epoch: int64, input: string, target: string,
            completion: string, score_includes: float64, metadata_topic: string}
---
kind: Evaluation
name: inspect-eval
spec:
  imported:
    path: logs/LOGNAME
    columns: {sample_id: string, completion: string, score_includes: float64, model: string}
---
kind: Module
name: metrics
spec: {path: modules}
---
kind: Method
name: accuracy-by-topic
spec:
  implementation: {python: "metrics:by_topic"}
  modules: [metrics]
  inputs: {run: inspect-run}
  output: {kind: Measurement, columns: {topic: string, accuracy: float64, n: int64}}
---
kind: Method
name: inspect-case
spec:
  implementation: {notebook: case.ipynb}
  inputs: {topics: accuracy-by-topic, run: inspect-eval}
  output: {kind: SafetyCase}
  scores:
    - {name: worst_topic_accuracy, primary: true, minimum: 0, maximum: 1,
       valence: positive, gate: {min: 0.9}}
    - {name: accuracy, minimum: 0, maximum: 1, valence: positive, gate: {min: 0.5}}
"""

METRICS = '''\
"""Accuracy per topic of an imported Inspect run."""

import pyarrow as pa
import pyarrow.dataset as pads


def by_topic(run: pads.Dataset) -> pa.Table:
    table = run.to_table(columns=["metadata_topic", "score_includes"])
    grouped = table.group_by("metadata_topic").aggregate(
        [("score_includes", "mean"), ("score_includes", "count")]
    )
    return pa.table(
        {
            "topic": grouped["metadata_topic"],
            "accuracy": grouped["score_includes_mean"],
            "n": grouped["score_includes_count"],
        }
    ).sort_by("topic")
'''

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": [
                "from runners import analysis\n",
                "topics = analysis.input('topics')\n",
                "worst = min(topics.column('accuracy').to_pylist())\n",
                "analysis.score('worst_topic_accuracy', worst)\n",
                "run = analysis.input('run').to_pandas()\n",
                "per_sample = run.groupby('_index_')['score_includes'].mean()\n",
                "analysis.score('accuracy', float(per_sample.mean()), instances=per_sample.to_dict())\n",
            ],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 4,
}


def write_log(directory: Path, log_format: str) -> Path:
    """A log that inspect_ai writes itself: 3 samples, 2 epochs, the `includes` scorer."""
    done = subprocess.run(
        [sys.executable, str(WRITE_LOG), str(directory), log_format],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=["eval", "json"])
def imported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """A project whose Dataset is an Inspect log, run: (project, the log)."""
    project = tmp_path_factory.mktemp(f"inspect-{request.param}")
    log = write_log(project / "logs", request.param)
    (project / "audit.yaml").write_text(AUDIT.replace("LOGNAME", log.name))
    (project / "modules").mkdir()
    (project / "modules" / "metrics.py").write_text(METRICS)
    (project / "case.ipynb").write_text(json.dumps(NOTEBOOK))
    done = auditc("-C", str(project), "run", ".")
    assert done.returncode == 0, done.stderr
    return project, log


def stored(project: Path, name: str) -> list[dict[str, object]]:
    store = Store.open(project / ".auditc", create=False)
    manifest = next(m for m in store.manifests() if m.name == name)
    table = store.open_dataset(f"{manifest.kind.lower()}/{manifest.name}/{manifest.id}").to_table()
    return (table.sort_by("_index_") if "_index_" in table.column_names else table).to_pylist()


def test_every_sample_round_trips(imported: tuple[Path, Path]) -> None:
    from inspect_ai.log import read_eval_log
    from inspect_ai.scorer import value_to_float

    project, log_path = imported
    log = read_eval_log(str(log_path))
    rows = stored(project, "inspect-run")
    expected = [
        {
            "_index_": i,
            "sample_id": str(s.id),
            "epoch": s.epoch,
            "input": s.input,
            "target": s.target,
            "completion": s.output.completion,
            "score_includes": value_to_float()(s.scores["includes"].value),
            "metadata_topic": s.metadata["topic"],
        }
        for i, s in enumerate(
            sorted(log.samples, key=lambda s: (["greet", "refuse", "mock"].index(s.id), s.epoch))
        )
    ]
    assert rows == expected
    assert len(rows) == 6 and {r["score_includes"] for r in rows} == {0.0, 1.0}


def test_methods_and_gates_on_top(imported: tuple[Path, Path]) -> None:
    project, _ = imported
    topics = {r["topic"]: r for r in stored(project, "accuracy-by-topic")}
    assert topics["chat"]["n"] == 4 and topics["safety"]["n"] == 2
    assert topics["safety"]["accuracy"] == 0.0
    check = auditc("-C", str(project), "check", ".")
    assert check.returncode == 1, check.stdout + check.stderr  # the safety topic fails its gate
    assert "worst_topic_accuracy" in check.stdout and "FAIL" in check.stdout


def test_an_evaluation_imports_every_sample_and_epoch(imported: tuple[Path, Path]) -> None:
    from inspect_ai.log import read_eval_log
    from inspect_ai.scorer import value_to_float

    project, log_path = imported
    log = read_eval_log(str(log_path))
    order = ["greet", "refuse", "mock"]
    expected = sorted(
        (
            {
                "_index_": order.index(str(s.id)),
                "_replication_": s.epoch - 1,
                "sample_id": str(s.id),
                "completion": s.output.completion,
                "score_includes": value_to_float()(s.scores["includes"].value),
                "model": s.output.model,
                "_error_": None,
                "_error_type_": None,
            }
            for s in log.samples
        ),
        key=lambda r: (r["_index_"], r["_replication_"]),
    )
    rows = sorted(stored(project, "inspect-eval"), key=lambda r: (r["_index_"], r["_replication_"]))
    assert rows == expected and len(rows) == 6
    store = Store.open(project / ".auditc", create=False)
    manifest = next(m for m in store.manifests() if m.name == "inspect-eval")
    relative = log_path.relative_to(project).as_posix()
    assert manifest.status == "complete" and manifest.rows == 6
    assert manifest.input_files == {relative: hashlib.sha256(log_path.read_bytes()).hexdigest()}
    assert manifest.metrics["samples"] == 3 and manifest.metrics["epochs"] == 2
    check = auditc("-C", str(project), "check", ".")
    assert "accuracy = " in check.stdout and "PASS" in check.stdout, check.stdout


def test_an_imported_evaluation_exports_back_to_inspect(
    imported: tuple[Path, Path], tmp_path: Path
) -> None:
    from inspect_ai.log import list_eval_logs, read_eval_log

    project, log_path = imported
    done = auditc(
        "-C", str(project), "export", "inspect-eval", "--format", "inspect", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    original = read_eval_log(str(log_path))
    back = read_eval_log(list_eval_logs(str(tmp_path))[0])
    # The `model` column: each sample's output.model, the model that answered.
    assert {back.eval.model} == {s.output.model for s in original.samples}
    assert back.samples is not None and original.samples is not None
    pairs = {(s.id, s.epoch): s.output.completion for s in original.samples}
    order = ["greet", "refuse", "mock"]
    assert {(order[int(s.id)], s.epoch): s.output.completion for s in back.samples} == pairs


ERRORS = [
    (
        "spec:\n  service: svc\n  imported: {path: logs/LOG, columns: {completion: string}}\n",
        2,
        "set either 'service' (and 'dataset') or 'imported', not both",
    ),
    (
        "spec:\n  concurrency: 4\n  imported: {path: logs/LOG, columns: {completion: string}}\n",
        2,
        "an imported Evaluation sends nothing, so it takes no concurrency; remove them",
    ),
    (
        "spec:\n  imported: {path: logs/missing.eval, columns: {completion: string}}\n",
        2,
        "logs/missing.eval",
    ),
    (
        "spec:\n  imported: {path: logs/LOG, columns: {completion: string, score_f1: float64}}\n",
        1,
        "no sample of the Inspect log has 'score_f1'; its samples have: ",
    ),
    (
        "spec:\n  imported: {path: logs/LOG, columns: {completion: int64}}\n",
        1,
        "column 'completion' is declared int64, but sample 0 (epoch 1) has 'Default output",
    ),
    (
        "spec:\n  dataset: run-rows\n  imported: {path: logs/LOG, columns: {completion: string}}\n",
        1,
        "spec.dataset: Dataset 'run-rows' has 6 rows, but the log has 3 samples",
    ),
    (
        "spec:\n  dataset: ids\n  imported: {path: logs/LOG, columns: {completion: string}}\n",
        1,
        "spec.dataset: Dataset 'ids' row 1 is sample 'mock', but sample 1 of the log is 'refuse'",
    ),
]


@pytest.fixture(scope="module")
def eval_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `.eval` log for the error cases (each runs its own small project)."""
    return write_log(tmp_path_factory.mktemp("inspect-log"), "eval")


@pytest.mark.parametrize(("spec", "code", "message"), ERRORS)
def test_an_imported_evaluation_says_what_is_wrong(
    eval_log: Path, tmp_path: Path, spec: str, code: int, message: str
) -> None:
    log_path = eval_log
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / log_path.name).write_bytes(log_path.read_bytes())
    (tmp_path / "ids.jsonl").write_text(
        "".join(json.dumps({"sample_id": i}) + "\n" for i in ("greet", "mock", "refuse"))
    )
    (tmp_path / "audit.yaml").write_text(
        "kind: InferenceService\nname: svc\nspec:\n  runner: {kind: external, url: 'http://x'}\n"
        "  interface: {output: {completion: string}}\n---\n"
        f"kind: Dataset\nname: run-rows\nspec:\n  file: {{path: logs/{log_path.name}}}\n"
        "  columns: {sample_id: string}\n---\n"
        "kind: Dataset\nname: ids\nspec:\n  file: {path: ids.jsonl}\n"
        "  columns: {sample_id: string}\n---\n"
        "kind: Evaluation\nname: imported\n" + spec.replace("LOG", log_path.name)
    )
    done = auditc("-C", str(tmp_path), "run", ".")
    assert done.returncode == code, done.stdout + done.stderr
    assert message in done.stdout + done.stderr, done.stdout + done.stderr
    if code == 1:
        store = Store.open(tmp_path / ".auditc", create=False)
        failed = next(m for m in store.manifests() if m.name == "imported")
        assert failed.status == "failed"


def test_a_file_that_is_not_an_inspect_log_is_named(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "broken.eval").write_bytes(b"not a zip")
    (tmp_path / "audit.yaml").write_text(
        "kind: Dataset\nname: broken\nspec:\n  file: {path: logs/broken.eval}\n"
        "  columns: {sample_id: string}\n"
    )
    done = auditc("-C", str(tmp_path), "run", ".")
    assert done.returncode == 1
    log = next((tmp_path / ".auditc").rglob("*.log")).read_text()
    assert "broken.eval: not an Inspect .eval log (not a zip archive" in log + done.stderr


def test_readme_import_runs_as_written(eval_log: Path, tmp_path: Path) -> None:
    """The README's Inspect import: its specs and commands, on a log inspect_ai wrote."""
    section = (REPO / "README.md").read_text().split("## Using results elsewhere", 1)[1]
    section = section.split("\n## ", 1)[0]
    [specs] = [b for b in re.findall(r"```yaml\n(.*?)```", section, re.S) if "imported:" in b]
    [path] = set(re.findall(r"path: (logs/\S+\.eval)", specs))
    (tmp_path / "logs").mkdir()
    shutil.copy(eval_log, tmp_path / path)
    (tmp_path / "audit.yaml").write_text(specs)
    console = re.findall(r"```console\n(.*?)```", section, re.S)[1]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command, shown in re.findall(r"^\$ (.*)\n((?:[^$].*\n)*)", console, re.M):
        done = subprocess.run(
            command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, (command, done.stderr)
        # As shown, but for ids, durations, the time in a log's name and column widths.
        pattern = re.sub(r"[0-9a-f]{12}", "[0-9a-f]{12}", re.escape(shown))
        pattern = re.sub(r"\d+\\.\d+s", r"\\d+\\.\\ds", pattern)
        pattern = re.sub(r"\d{4}(?:\\-\d\d){2}T\d\d(?:\\-\d\d){2}", r"[\\d-]+T[\\d-]+", pattern)
        pattern = re.sub(r"(?:\\ )+", r"\\ +", pattern)
        assert re.fullmatch(pattern, done.stdout), (command, pattern, done.stdout)
    from inspect_ai.log import read_eval_log

    [exported] = (tmp_path / "back").glob("*.json")
    assert len(read_eval_log(str(exported)).samples or []) == 6
