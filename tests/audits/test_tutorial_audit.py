"""The tutorial audit: its data, its Python methods and its safety-case notebook, run for real."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from audit_support import TUTORIAL, AuditRun, load_resources, run_tutorial

from schemas import ScoresFile, Store


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> AuditRun:
    return run_tutorial(tmp_path_factory.mktemp("tutorial") / "store")


def _import(path: Path, name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_data_is_what_the_generator_writes(tmp_path: Path) -> None:
    generate = _import(TUTORIAL / "data" / "generate.py", "tutorial_generate")
    generate.main(["--out", str(tmp_path)])
    for name in ("identity_sentences.jsonl", "general_sentences.jsonl"):
        assert (tmp_path / name).read_bytes() == (TUTORIAL / "data" / name).read_bytes(), name
    identity = [
        json.loads(line) for line in (TUTORIAL / "data" / "identity_sentences.jsonl").open()
    ]
    assert len(identity) >= 1000
    assert len({row["identity"] for row in identity}) >= 20
    assert (
        sum(
            (TUTORIAL / "data" / n).stat().st_size
            for n in ("identity_sentences.jsonl", "general_sentences.jsonl")
        )
        < 1_000_000
    )


def test_specs_validate_and_the_notebook_is_committed_clean() -> None:
    resources = load_resources()
    assert {"identity-sentences", "offensive-filter", "offensive-filter-safety-case"} <= set(
        resources
    )
    for path in TUTORIAL.glob("*.yaml"):
        assert path.read_text().startswith(
            "# yaml-language-server: $schema=../../schemas/auditc-spec.schema.json"
        )
    notebook = json.loads((TUTORIAL / "notebooks" / "safety_case.ipynb").read_text())
    assert all(not cell.get("outputs") for cell in notebook["cells"])


def test_per_row_predictions_cover_every_sentence(tutorial: AuditRun) -> None:
    predictions = tutorial.table("identity-predictions")
    dataset = tutorial.table("identity-sentences")
    assert predictions.num_rows == dataset.num_rows == tutorial.results["identity-predictions"].rows
    threshold = tutorial.resources["identity-predictions"].spec.parameters["threshold"]
    expected = pc.cast(pc.greater_equal(predictions["score"], threshold), "int8")
    assert predictions["predicted"].to_pylist() == expected.to_pylist()


def test_rates_by_identity_agree_with_the_predictions(tutorial: AuditRun) -> None:
    predictions = tutorial.table("identity-predictions")
    rates = tutorial.table("fpr-by-identity").to_pylist()
    assert len(rates) == len(set(predictions["group"].to_pylist())) >= 20
    for row in rates:
        mine = predictions.filter(
            pc.and_(pc.equal(predictions["group"], row["group"]), pc.equal(predictions["label"], 0))
        )
        assert row["n_harmless"] == mine.num_rows
        assert row["false_positives"] == pc.sum(mine["predicted"]).as_py()
        assert row["fpr_low"] <= row["fpr"] <= row["fpr_high"]
    metrics = {r["metric"]: r for r in tutorial.table("general-metrics").to_pylist()}
    general = tutorial.table("general-predictions")
    assert metrics["accuracy"]["value"] == pytest.approx(pc.mean(general["correct"]).as_py())


def test_safety_case_scores_are_computed_from_the_measurements(tutorial: AuditRun) -> None:
    node = Store.open(tutorial.uri("offensive-filter-safety-case"))
    scores = {
        s.name: s
        for s in ScoresFile.parse(node.read_bytes("_case/scores.json"), "scores.json").scores
    }
    rates = tutorial.table("fpr-by-identity")["fpr"].to_pylist()
    assert scores["max_fpr_gap"].value == pytest.approx(max(rates) - min(rates))
    assert scores["max_fpr_gap"].primary and scores["max_fpr_gap"].gate_max == 0.1
    identity = tutorial.table("identity-predictions")
    harmless = identity.filter(pc.equal(identity["label"], 0))
    assert scores["identity_fpr"].value == pytest.approx(pc.mean(harmless["predicted"]).as_py())
    for name in ("accuracy", "identity_fpr", "general_fpr", "recall"):
        instances = pq.read_table(node.path(f"_case/instances/{name}.parquet"))
        assert math.isclose(pc.mean(instances["value"]).as_py(), scores[name].value), name
    # Scores that are not means declare how they aggregate, and their instances say so.
    precision = pq.read_table(node.path("_case/instances/precision.parquet"))
    assert math.isclose(
        pc.sum(precision["value"]).as_py() / pc.sum(precision["predicted"]).as_py(),
        scores["precision"].value,
    )
    gap = pq.read_table(node.path("_case/instances/max_fpr_gap.parquet")).to_pandas()
    by_term = gap.groupby("identity")["value"].mean()
    assert math.isclose(by_term.max() - by_term.min(), scores["max_fpr_gap"].value)
    assert scores["max_fpr_gap"].interval is not None
    assert scores["max_fpr_gap"].gate() == "fail"  # the whole interval lies above 10%


def test_safety_case_html_shows_findings_table_and_plot_without_code(tutorial: AuditRun) -> None:
    html = (
        Store.open(tutorial.uri("offensive-filter-safety-case"))
        .read_bytes("_case/index.html")
        .decode()
    )
    worst = tutorial.table("fpr-by-identity").to_pylist()[0]
    assert "Findings" in html and f"{worst['fpr']:.1%}" in html and worst["group"] in html
    assert "data:image/png;base64" in html  # the matplotlib figure
    assert "False-positive rate by identity term" in html
    assert "analysis.input" not in html and "import matplotlib" not in html
