"""Notebook methods: papermill in a real kernel, HTML without code, checked scores."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from methods_support import make_method, write_notebook

from runners.methods import MethodConfig, MethodInputRef, run_method
from schemas import MethodError, ScoresFile, Store

SCORES = [
    {
        "name": "flag_rate",
        "primary": True,
        "minimum": 0,
        "maximum": 1,
        "valence": "negative",
        "gate": {"max": 0.9},
        "format": "{value:.1%}",
    },
    {"name": "rows_seen", "minimum": 0},
]

GOOD_CELLS = (
    "# md ## Flag rates",
    """
    from runners import analysis
    phrases = analysis.input("phrases")
    flags = {i: float(s > threshold) for i, s in zip(phrases["_index_"].to_pylist(), phrases["score"].to_pylist())}
    print("SECRET_CODE_MARKER" if False else "threshold is", threshold, analysis.parameter("threshold"))
    """,
    """
    rate = analysis.score("flag_rate", sum(flags.values()) / len(flags), text="share flagged", instances=flags)
    analysis.score("rows_seen", phrases.num_rows)
    (analysis.output_dir() / "extra.txt").write_text(auditc_inputs["phrases"])
    analysis.score_card(rate)
    """,
)


def _config(store: Path, notebook: Path, scores: list[dict[str, object]] = SCORES) -> MethodConfig:
    method = make_method(
        "case",
        {
            "implementation": {"notebook": notebook.name},
            "parameters": {"threshold": 0.5},
            "output": {"kind": "SafetyCase"},
            "scores": scores,
        },
    )
    return MethodConfig(
        method=method,
        inputs={"phrases": MethodInputRef(kind="Dataset", uri=str(store / "dataset/phrases/d1"))},
        notebook_path=str(notebook),
        output_uri=str(store / "method" / "case" / "n1"),
    )


def _outputs(node: Store) -> list[str]:
    """The node's files, without the digests its writers recorded for the manifest."""
    return sorted(f for f in node.list_files() if not f.startswith("_digests/"))


def test_notebook_runs_renders_and_exports_scores(store: Path, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "case.ipynb", *GOOD_CELLS)
    result = run_method(_config(store, notebook))
    node = Store.open(store / "method" / "case" / "n1")
    assert _outputs(node) == [
        "_case/extra.txt",
        "_case/index.html",
        "_case/instances/flag_rate.parquet",
        "_case/notebook.ipynb",
        "_case/scores.json",
        "part-00000.parquet",
    ]
    # The scores are also the node's data: what pandas reads from the node directory.
    table = pd.read_parquet(node.base)
    assert table[["name", "value", "formatted"]].to_dict("records") == [
        {"name": "flag_rate", "value": 0.5, "formatted": "50.0%"},
        {"name": "rows_seen", "value": 6.0, "formatted": "6"},
    ]
    # parameters came in through papermill and through the analysis API alike
    executed = json.loads(node.read_bytes("_case/notebook.ipynb"))
    assert "threshold is 0.5 0.5" in json.dumps(executed)
    assert node.read_bytes("_case/extra.txt").decode() == str(store / "dataset/phrases/d1")

    scores = ScoresFile.parse(node.read_bytes("_case/scores.json"), "scores.json")
    assert scores.method == "case" and scores.id == "n1"
    assert [(s.name, s.value) for s in scores.scores] == [("flag_rate", 0.5), ("rows_seen", 6.0)]
    assert scores.scores[0].text == "share flagged" and scores.scores[0].gate_max == 0.9
    assert result.scores == scores.scores

    instances = pq.read_table(node.path("_case/instances/flag_rate.parquet"))
    assert instances.schema == pa.schema(
        [pa.field("_index_", pa.int64(), nullable=False), pa.field("value", pa.float64())]
    )
    assert instances.column("value").to_pylist() == [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]

    html = node.read_bytes("_case/index.html").decode()
    assert "Flag rates" in html and "share flagged" in html and "50.0%" in html
    assert "analysis.input" not in html and "SECRET_CODE_MARKER" not in html  # no code cells
    assert 'class="jp-InputPrompt' not in html and 'class="jp-OutputPrompt' not in html
    # The page opens offline: nothing is loaded from a CDN (nbconvert's default would).
    assert not re.search(
        r"<script[^>]*\bsrc=|import\(\s*[\"']https?:|<link[^>]*\bhref=[\"']https?:", html
    )


def test_raising_cell_names_the_cell_and_keeps_the_notebook(store: Path, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "case.ipynb", "x = 1", "ratio = x / 0")
    with pytest.raises(MethodError) as info:
        run_method(_config(store, notebook))
    message = str(info.value)
    assert "Method/case: notebook case.ipynb failed in cell" in message
    assert "(`ratio = x / 0`): ZeroDivisionError: division by zero" in message
    node = Store.open(store / "method" / "case" / "n1")
    assert _outputs(node) == ["_case/notebook.ipynb"]  # kept for debugging, nothing else


def test_missing_primary_score_fails(store: Path, tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "case.ipynb", "from runners import analysis\nanalysis.score('rows_seen', 3)"
    )
    scores = [{**SCORES[0], "gate": None}, SCORES[1]]
    with pytest.raises(MethodError, match="the primary score 'flag_rate' was not exported"):
        run_method(_config(store, notebook, scores))
    assert _outputs(Store.open(store / "method" / "case" / "n1")) == ["_case/notebook.ipynb"]


def test_bad_score_fails_in_the_cell_that_exports_it(store: Path, tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "case.ipynb",
        "from runners import analysis",
        "analysis.score('flag_rate', float('nan'))",
    )
    with pytest.raises(MethodError) as info:
        run_method(_config(store, notebook))
    assert "(`analysis.score('flag_rate', float('nan'))`): MethodError:" in str(info.value)
    assert "score 'flag_rate' is nan; expected a finite number" in str(info.value)


def test_entry_point_runs_a_notebook_and_writes_the_result(store: Path, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "case.ipynb", *GOOD_CELLS)
    config = tmp_path / "method.json"
    config.write_text(_config(store, notebook).model_dump_json(), encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runners.methods",
            str(config),
            "--result",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r.json").read_text())["scores"][0]["value"] == 0.5
    assert "without encryption" not in done.stderr
    assert "Passed unknown parameter" not in done.stderr


def test_entry_point_exit_codes_for_failures_and_bad_configs(store: Path, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "case.ipynb", "raise ValueError('boom')")
    config = tmp_path / "method.json"
    config.write_text(_config(store, notebook).model_dump_json(), encoding="utf-8")
    failed = subprocess.run(
        [sys.executable, "-m", "runners.methods", str(config)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert failed.returncode == 1
    assert "error: Method/case: notebook case.ipynb failed in cell" in failed.stderr
    assert "ValueError: boom" in failed.stderr

    bad = json.loads(config.read_text())
    bad["inputs"] = {}
    config.write_text(json.dumps(bad), encoding="utf-8")
    invalid = subprocess.run(
        [sys.executable, "-m", "runners.methods", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert invalid.returncode == 2
    assert "do not match the method's inputs ['phrases']" in invalid.stderr
