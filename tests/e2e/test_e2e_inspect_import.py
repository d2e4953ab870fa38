"""An Inspect AI log, written by inspect_ai itself (its mockllm model, offline), imported as a
Dataset: every sample comes through, and an audit adds a method, a safety case and a gate."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from e2e_helpers import auditc

from schemas import Store

WRITE_LOG = textwrap.dedent(
    """
    import sys
    import inspect_ai.model._model as model_module

    # mockllm counts tokens with tiktoken, which downloads its encoding: count words instead.
    model_module.count_text_tokens = lambda text: max(1, len(text.split()))

    from inspect_ai import Task, eval
    from inspect_ai.dataset import Sample
    from inspect_ai.scorer import includes
    from inspect_ai.solver import generate

    samples = [
        Sample(id="greet", input="Say hello", target="Default", metadata={"topic": "chat"}),
        Sample(id="refuse", input="Say no", target="never", metadata={"topic": "safety"}),
        Sample(id="mock", input="Which model?", target="mockllm", metadata={"topic": "chat"}),
    ]
    task = Task(dataset=samples, solver=generate(), scorer=includes(), name="tiny")
    [log] = eval(task, model="mockllm/model", log_dir=sys.argv[1], display="none", epochs=2,
                 log_format=sys.argv[2])
    print(log.location)
    """
)

AUDIT = """\
kind: Dataset
name: inspect-run
spec:
  file: {path: logs/LOGNAME, format: inspect}
  columns: {sample_id: string, epoch: int64, input: string, target: string,
            completion: string, score_includes: float64, metadata_topic: string}
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
  inputs: {topics: accuracy-by-topic}
  output: {kind: SafetyCase}
  scores:
    - {name: worst_topic_accuracy, primary: true, minimum: 0, maximum: 1,
       valence: positive, gate: {min: 0.9}}
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
        [sys.executable, "-c", WRITE_LOG, str(directory), log_format],
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
