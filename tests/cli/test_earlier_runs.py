"""Earlier runs of a node id (`auditc run --force` keeps them) named by `diff` and `report`.

The safety case reads a file outside the project (so outside its node id), the way an
`external` service can change behind the same URL: a forced re-run gives other scores
under the same id, and the earlier run stays readable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli.main import main

SPECS = """\
kind: Dataset
name: rows
spec:
  file: {path: rows.jsonl}
  columns: {text: string}
---
kind: Method
name: drifting-case
documentation: {title: Does the outside answer stay right?}
spec:
  implementation: {notebook: case.ipynb}
  inputs: {rows: rows}
  parameters: {answers: ANSWERS}
  output: {kind: SafetyCase}
  scores:
    - {name: accuracy, primary: true, valence: positive, minimum: 0, maximum: 1,
       format: "{value:.0%}", gate: {min: 0.7}}
"""

CELLS = [
    "answers = ''",
    "from runners import analysis\n"
    "values = [float(x) for x in open(answers).read().split()]\n"
    "analysis.score('accuracy', sum(values) / len(values), instances=dict(enumerate(values)))",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    answers = root / "answers.txt"  # outside audits/: not part of any node id
    audits = root / "audits"
    audits.mkdir()
    (audits / "rows.jsonl").write_text('{"text": "a"}\n')
    (audits / "audit.yaml").write_text(SPECS.replace("ANSWERS", json.dumps(str(answers))))
    cells = [
        {
            "cell_type": "code",
            "metadata": {"tags": ["parameters"] if i == 0 else []},
            "source": src,
            "execution_count": None,
            "outputs": [],
        }
        for i, src in enumerate(CELLS)
    ]
    (audits / "case.ipynb").write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    answers.write_text("1 " * 18 + "0 " * 2)  # 90 %
    assert main(["-C", str(root), "run"]) is None
    answers.write_text("1 " * 10 + "0 " * 10)  # 50 %: the same node id, another answer
    assert main(["-C", str(root), "run", "--force", "--select", "drifting-case"]) is None
    return root


def test_diff_compares_a_re_run_with_the_run_it_replaced(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    store = str(project / ".auditc")

    code = main(
        [
            "-C",
            str(project),
            "diff",
            store,
            store,
            "--base-run",
            "previous",
            "--fail-on",
            "regression",
        ]
    )
    out = capsys.readouterr().out

    assert code == 1  # the gate went PASS → FAIL between the two runs of one id
    assert f"auditc diff: {store} (run previous) → {store}" in out
    assert (
        "REGRESSION   drifting-case · (no system under test)  PASS → FAIL  accuracy 90% → 50%"
        in out
    )
    assert "#1 → #2, re-run)" in out
    assert "accuracy: 20 paired, 8 changed" in out
    assert "↻ Method/drifting-case" in out and "run 1 → 2" in out


def test_a_run_that_is_not_recorded_is_named(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    store = str(project / ".auditc")

    main(["-C", str(project), "diff", store, store, "--base-run", "7"])

    out = capsys.readouterr().out
    assert "has no run 7 (runs: 1, 2)" in out


def test_report_shows_an_earlier_run_and_names_it(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["-C", str(project), "report", "--run", "previous", "--out", str(tmp_path / "old")])
    main(["-C", str(project), "report", "--out", str(tmp_path / "now")])
    capsys.readouterr()

    old = next((tmp_path / "old").glob("case-*.html")).read_text()
    now = next((tmp_path / "now").glob("case-*.html")).read_text()
    provenance = (tmp_path / "now" / "provenance.html").read_text()
    assert ">90%</strong>" in old and "#1 (an earlier run of this id" in old
    assert ">50%</strong>" in now and "#2, finished" in now
    assert 'data-run="1"' in provenance and "earlier runs of this id" in provenance
    with pytest.raises(SystemExit) as info:
        main(["-C", str(project), "report", "--run", "zero", "--out", str(tmp_path / "x")])
    assert info.value.code == 2
