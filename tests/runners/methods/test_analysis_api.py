"""The analysis helper API, in-process: inputs, parameters, and the score rules."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from runners import analysis
from schemas import MethodError, ScoreSpec, ScoreValue

SPECS = [
    ScoreSpec(name="gap", primary=True, minimum=0, maximum=1, gate={"max": 0.1}),
    ScoreSpec(name="accuracy", minimum=0, maximum=1),
    ScoreSpec(name="count"),
]


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Path) -> Path:
    """An analysis config for a SafetyCase run, set in the environment as the runner does."""
    out = tmp_path / "out"
    out.mkdir()
    config = analysis.AnalysisConfig(
        method="case",
        node_id="n1",
        output_kind="SafetyCase",
        inputs={
            "phrases": analysis.MethodInputRef(
                kind="Dataset", uri=str(store / "dataset/phrases/d1")
            )
        },
        parameters={"threshold": 0.5},
        scores=SPECS,
        output_dir=str(out),
    )
    path = tmp_path / "analysis.json"
    path.write_text(config.model_dump_json(), encoding="utf-8")
    monkeypatch.setenv(analysis.ANALYSIS_CONFIG_ENV, str(path))
    return out


@pytest.mark.parametrize("package", ["runners.analysis", "runners.methods", "runners.datasets"])
def test_public_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(set(module.__all__)) == sorted(module.__all__)
    assert [n for n in module.__all__ if not hasattr(module, n)] == []


def test_inputs_and_parameters(run_dir: Path) -> None:
    assert analysis.input("phrases").num_rows == 6
    assert analysis.input_dataset("phrases").count_rows() == 6
    assert analysis.parameter("threshold") == 0.5
    assert analysis.parameter("alpha", 0.05) == 0.05
    assert analysis.output_dir() == run_dir
    with pytest.raises(MethodError, match=r"no input named 'phrase' \(inputs: phrases\)"):
        analysis.input("phrase")
    with pytest.raises(MethodError, match=r"no parameter named 'alpha' \(parameters: threshold\)"):
        analysis.parameter("alpha")


def test_outside_a_run_the_message_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(analysis.ANALYSIS_CONFIG_ENV, raising=False)
    with pytest.raises(MethodError, match="AUDITC_ANALYSIS_CONFIG is not set"):
        analysis.parameter("threshold")


def test_scores_are_recorded_with_their_specs(run_dir: Path) -> None:
    gap = analysis.score(
        "gap", np.float64(0.25), text="worst group", instances={3: 1.0, 1: 0.0, 5: 0.0, 7: 0.0}
    )
    analysis.score("count", np.int64(7))
    assert gap.value == 0.25 and gap.gate_max == 0.1 and gap.passed() is False
    assert [s.name for s in analysis.read_exported_scores(run_dir)] == ["gap", "count"]
    card = analysis.score_card(gap).data
    assert "FAIL" in card and "worst group" in card


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "gapp",
            0.1,
            r"score 'gapp' is not declared in spec.scores \(declared: accuracy, count, gap\)",
        ),
        ("gap", math.nan, "score 'gap' is nan; expected a finite number"),
        ("gap", math.inf, "score 'gap' is inf"),
        ("gap", 1.5, r"score 'gap' is 1.5, outside its declared range \[0.0, 1.0\]"),
        ("gap", True, "score 'gap' must be a real number, got bool"),
        ("gap", "0.5", "score 'gap' must be a real number, got str"),
    ],
)
def test_bad_scores_are_refused(run_dir: Path, name: str, value: object, message: str) -> None:
    with pytest.raises(MethodError, match=message):
        analysis.score(name, value)
    assert analysis.read_exported_scores(run_dir) == []


def test_a_score_exported_twice_is_refused(run_dir: Path) -> None:
    analysis.score("accuracy", 0.9)
    with pytest.raises(MethodError, match="score 'accuracy' was already exported"):
        analysis.score("accuracy", 0.8)


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        ({0: 1.0, 1: math.nan}, "the value of _index_ 1 is not a finite number"),
        (pa.table({"_index_": [0, 0], "value": [1.0, 0.0]}), "_index_ 0 appears more than once"),
        (
            pa.table({"row": [0], "value": [1.0]}),
            r"the table has no column '_index_' \(it has: row, value\)",
        ),
        ([1.0, 0.0], "expected a mapping {_index_: value} or a table"),
    ],
)
def test_bad_instances_are_refused(run_dir: Path, instances: object, message: str) -> None:
    with pytest.raises(MethodError, match=message):
        analysis.score("accuracy", 0.5, instances=instances)
    assert not (run_dir / "instances").exists()


def test_check_scores_needs_primary_and_gated_scores() -> None:
    accuracy = analysis.check_score("case", SPECS, "accuracy", 0.9)
    with pytest.raises(MethodError, match="the primary score 'gap' was not exported"):
        analysis.check_scores("case", SPECS, [accuracy])
    ungated_primary = [
        SPECS[1].model_copy(update={"primary": True}),
        SPECS[0].model_copy(update={"primary": False}),
    ]
    with pytest.raises(MethodError, match="scores with a gate were not exported: gap"):
        analysis.check_scores("case", ungated_primary, [accuracy])
    gap = analysis.check_score("case", SPECS, "gap", 0.0)
    ordered = analysis.check_scores("case", SPECS, [accuracy, gap])
    assert [s.name for s in ordered] == ["gap", "accuracy"]
    assert isinstance(ordered[0], ScoreValue)


def test_display_helpers_render_self_contained_html(run_dir: Path) -> None:
    rows = pa.table({"group": ["a<b", "c"], "fpr": [0.125, None]})
    html = analysis.table(rows, formats={"fpr": "{value:.1%}"}, caption="FPR").data
    assert "a&lt;b" in html and "12.5%" in html and "—" in html
    card = analysis.title_card("Audit", "summary", {"System": "filter"}).data
    assert "System" in card and "<script" not in card and "http" not in card
    assert card == analysis.title_card("Audit", "summary", {"System": "filter"}).data  # no date
    assert "Hazard" in analysis.conclusion("bad", "hazard").data


def test_lazy_public_names_match_the_modules() -> None:
    """`runners.analysis` loads its heavy modules lazily; its name table must stay true."""
    import importlib

    import runners.analysis as analysis

    for module in ("_api", "_display", "_intervals", "_scores", "_tables"):
        names = importlib.import_module(f"runners.analysis.{module}").__all__
        assert {n: analysis._LAZY[n] for n in names} == dict.fromkeys(names, f".{module}")
        for name in names:
            assert getattr(analysis, name) is getattr(
                importlib.import_module(f"runners.analysis.{module}"), name
            )
    assert set(analysis.__all__) >= set(analysis._LAZY)


def test_building_method_configs_does_not_load_pyarrow() -> None:
    import subprocess
    import sys

    code = "import sys; from runners.methods import MethodConfig; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
