"""Run-to-run comparison: gate flips, paired tests and intervals, pairing, node changes, renderings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from report_store import SYSTEMS, SyntheticStore

from compiler.report import (
    BootstrapOptions,
    DiffReport,
    DiffSide,
    diff_results,
    load_results,
    render_diff,
)
from schemas import ScoreValue, UsageError


def _store(
    root: Path, *, system: int = 0, flip: float = 0.0, revision: str | None = None
) -> SyntheticStore:
    synthetic = SyntheticStore(root)
    spec = SYSTEMS[system]
    if revision is not None:
        spec = dataclasses.replace(spec, revision=revision)
    synthetic.audit(spec, synthetic.dataset(), seed=5, flip=flip)
    return synthetic


def _side(label: str, synthetic: SyntheticStore) -> DiffSide:
    return DiffSide.of_results(label, load_results(synthetic.store))


def _diff(base: SyntheticStore, head: SyntheticStore) -> DiffReport:
    return diff_results(_side("base", base), _side("head", head))


def _score(report: DiffReport, name: str, case: int = 0):  # type: ignore[no-untyped-def]
    return next(s for s in report.cases[case].scores if s.name == name)


def test_identical_runs_are_unchanged(tmp_path: Path) -> None:
    report = _diff(_store(tmp_path / "a"), _store(tmp_path / "b"))

    (case,) = report.cases
    assert case.status == "unchanged" and case.base_id == case.head_id
    accuracy = _score(report, "accuracy")
    assert accuracy.delta == 0 and accuracy.direction == "same"
    assert accuracy.comparison is not None and accuracy.comparison.changed == 0
    assert accuracy.comparison.low == accuracy.comparison.high == 0
    assert accuracy.comparison.p_value == 1.0
    assert accuracy.significant is False and accuracy.verdict == "unchanged"
    assert report.significant == [] and report.nodes == [] and report.gates == []


def test_a_planted_regression_is_detected_with_its_sign(tmp_path: Path) -> None:
    base = _store(tmp_path / "base")
    head = _store(tmp_path / "head", flip=0.2, revision="2.0.0")

    report = _diff(base, head)

    (case,) = report.cases
    assert case.status == "changed"
    accuracy = _score(report, "accuracy")
    c = accuracy.comparison
    assert c is not None and accuracy.delta is not None and accuracy.delta < -0.1
    assert c.test == "mcnemar" and c.paired == 240 and c.unpaired == 0
    assert c.low is not None and c.high is not None
    assert c.low < accuracy.delta < c.high < 0
    assert c.delta == pytest.approx(accuracy.delta)
    assert c.changed > 20 and c.p_adjusted < 0.001
    assert accuracy.significant is True and accuracy.verdict == "worse (significant)"
    # max_fpr_gap is not a mean: it is recomputed over resampled instances, by group.
    gap = _score(report, "max_fpr_gap")
    assert gap.comparison is not None and gap.comparison.test == "permutation"
    assert gap.comparison.delta == pytest.approx(gap.delta)


def test_an_improvement_is_better_and_its_interval_is_above_zero(tmp_path: Path) -> None:
    report = _diff(_store(tmp_path / "base", flip=0.2, revision="2.0.0"), _store(tmp_path / "head"))

    accuracy = _score(report, "accuracy")
    assert accuracy.significant is True and accuracy.direction == "better"
    assert accuracy.comparison is not None and accuracy.comparison.low is not None
    assert accuracy.comparison.low > 0


def _rate_case(
    synthetic: SyntheticStore,
    values: dict[int, float],
    *,
    gate_max: float | None = 0.05,
    upstream: dict[str, str] | None = None,
) -> None:
    index = sorted(values)
    rate = float(np.mean([values[i] for i in index]))
    score = ScoreValue(
        name="changed_rate",
        value=rate,
        primary=True,
        valence="negative",
        format="{value:.1%}",
        gate_max=gate_max,
        minimum=0,
        maximum=1,
    )
    instances = pa.table(
        {"_index_": pa.array(index, pa.int64()), "value": [values[i] for i in index]}
    )
    synthetic.safety_case(
        "rate-case",
        [score],
        upstream or {"InferenceService/svc": "s" * 20},
        instances={"changed_rate": instances},
        rows=len(index),
    )


def test_rows_added_between_runs_are_not_called_no_change(tmp_path: Path) -> None:
    """Issue 11, defect 1: a PASS → FAIL gate reported as "no significant change"."""
    base, head = SyntheticStore(tmp_path / "base"), SyntheticStore(tmp_path / "head")
    _rate_case(base, dict.fromkeys(range(340), 0.0))
    _rate_case(head, {**dict.fromkeys(range(340), 0.0), **dict.fromkeys(range(340, 376), 1.0)})

    report = _diff(base, head)
    text = render_diff(report, "text")
    markdown = render_diff(report, "markdown")

    rate = _score(report, "changed_rate")
    assert rate.delta == pytest.approx(36 / 376)
    assert rate.comparison is not None
    assert (rate.comparison.paired, rate.comparison.only_head) == (340, 36)
    assert rate.verdict == "not comparable: 36 instances in one run only"
    assert rate.significant is None
    # The gate flip comes first, and the unpaired rows are counted in text and Markdown.
    assert [(g.score, g.change, g.base, g.head) for g in report.gates] == [
        ("changed_rate", "regression", "pass", "fail")
    ]
    lines = text.splitlines()
    assert lines[3] == "gates: 1 regressed, 0 improved"
    assert lines[4].startswith(
        "  REGRESSION   rate-case · svc  PASS → FAIL  changed_rate 0.0% → 9.6%"
    )
    assert "changed_rate: 340 paired, 0 changed, 36 only in head" in text
    assert "no significant change" not in text
    assert "| 🔴 regression | rate-case · svc |" in markdown
    assert "36 only in head" in markdown


def _dataset(synthetic: SyntheticStore, rows: list[str], index: str | None) -> str:
    spec: dict[str, object] = {"file": {"path": "data/d.jsonl"}, "columns": {"text": "string"}}
    if index:
        spec["index"] = index
    digest = str(abs(hash(tuple(rows))))
    return synthetic.node(
        "Dataset", "sentences", spec, input_files={"audits/data/d.jsonl": digest}
    ).id


@pytest.mark.parametrize("index", [None, "id"])
def test_a_reordered_dataset_paired_by_position_is_flagged(
    tmp_path: Path, index: str | None
) -> None:
    """Issue 11, defect 2: a reordered file silently paired different rows."""
    rows = [f"sentence {i}" for i in range(40)]
    base, head = SyntheticStore(tmp_path / "base"), SyntheticStore(tmp_path / "head")
    for synthetic, order in ((base, rows), (head, rows[::-1])):
        dataset = _dataset(synthetic, order, index)
        flagged = {i: float("7" in text) for i, text in enumerate(order)}
        _rate_case(synthetic, flagged, upstream={"Dataset/sentences": dataset})

    report = _diff(base, head)
    text = render_diff(report, "text")

    (case,) = report.cases
    if index is None:
        assert len(case.warnings) == 1
        assert case.warnings[0].startswith("Dataset/sentences changed (")
        assert "paired by row position" in case.warnings[0]
        assert "declare `spec.index`" in text and "⚠️" in render_diff(report, "markdown")
    else:
        assert case.warnings == []


def test_the_verdict_never_contradicts_the_interval(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for trial in range(12):
        base, head = SyntheticStore(tmp_path / f"b{trial}"), SyntheticStore(tmp_path / f"h{trial}")
        n = int(rng.integers(30, 200))
        old = (rng.random(n) < 0.3).astype(float)
        new = np.where(rng.random(n) < rng.uniform(0, 0.4), 1 - old, old)
        extra = int(rng.integers(0, 3)) * 10
        _rate_case(base, dict(enumerate(old)), gate_max=None)
        _rate_case(
            head, {**dict(enumerate(new)), **{n + i: 1.0 for i in range(extra)}}, gate_max=None
        )

        s = _score(_diff(base, head), "changed_rate")

        c = s.comparison
        assert c is not None and s.delta is not None
        if s.significant:
            assert c.low is not None and c.high is not None and not c.low <= 0 <= c.high
            assert c.p_adjusted < 0.05 and c.low <= s.delta <= c.high
        if s.verdict == "no significant change":
            assert c.low is not None and c.high is not None
            assert c.low <= 0 <= c.high and c.low <= s.delta <= c.high
        if not s.verdict.startswith("not comparable"):
            assert c.high is not None and c.low is not None and c.low <= s.delta <= c.high


def test_changed_nodes_say_why(tmp_path: Path) -> None:
    report = _diff(_store(tmp_path / "base"), _store(tmp_path / "head", flip=0.2, revision="2.0.0"))

    by_key = {n.key: n for n in report.nodes}
    assert sorted(by_key) == [
        "Evaluation/filter-on-phrases",
        "Method/filter-safety-case",
        "Method/fpr-by-group",
    ]
    evaluation = by_key["Evaluation/filter-on-phrases"]
    assert evaluation.change == "changed"
    assert any(r.startswith("upstream Model/profanity-check: ") for r in evaluation.reasons)
    assert "model revision 1.9.1 → 2.0.0" in evaluation.reasons
    measurement = by_key["Method/fpr-by-group"]
    assert any(r.startswith("upstream Evaluation/filter-on-phrases") for r in measurement.reasons)


def test_spec_field_and_file_changes_are_listed(tmp_path: Path) -> None:
    base, head = SyntheticStore(tmp_path / "base"), SyntheticStore(tmp_path / "head")
    score = [ScoreValue(name="s", value=1.0, primary=True)]
    for synthetic, alpha, digest in ((base, 0.5, "a" * 64), (head, 0.7, "b" * 64)):
        synthetic.node(
            "Dataset", "d", {"columns": {"x": "string"}}, input_files={"audits/d.jsonl": digest}
        )
        dataset = next(synthetic.store.manifests())
        synthetic.safety_case("sc", score, {"Dataset/d": dataset.id}, alpha=alpha)

    report = _diff(base, head)

    reasons = {n.key: n.reasons for n in report.nodes}
    assert reasons["Dataset/d"] == ["file audits/d.jsonl: sha256 aaaaaaaaaaaa → bbbbbbbbbbbb"]
    assert "spec.parameters.alpha: 0.5 → 0.7" in reasons["Method/sc"]


def test_cases_are_paired_by_method_then_by_system(tmp_path: Path) -> None:
    base = SyntheticStore(tmp_path / "base")
    data = base.dataset()
    base.audit(SYSTEMS[0], data)
    base.audit(SYSTEMS[1], data)
    head = _store(tmp_path / "head", system=0)
    other = _store(tmp_path / "other", system=2)

    two_to_one = _diff(base, head)
    switched = _diff(head, other)

    assert [(c.system, c.status) for c in two_to_one.cases] == [
        ("filter-a", "unchanged"),
        ("filter-b", "removed"),
    ]
    assert all(s.head is None and s.delta is None for s in two_to_one.cases[1].scores)
    assert two_to_one.cases[1].scores[0].verdict == "only in base"
    (case,) = switched.cases
    assert case.system == "filter-a → filter-c" and case.status == "changed"


def test_bootstrap_options_are_checked() -> None:
    with pytest.raises(UsageError, match="--resamples must be between 100 and 100000, got 10"):
        BootstrapOptions(resamples=10)
    with pytest.raises(UsageError, match="--seed must be 0 or more, got -1"):
        BootstrapOptions(seed=-1)
    with pytest.raises(UsageError, match=r"--confidence must be in \[0.5, 1\), got 1.0"):
        BootstrapOptions(confidence=1.0)


def test_renderings(tmp_path: Path) -> None:
    report = _diff(_store(tmp_path / "base"), _store(tmp_path / "head", flip=0.2, revision="2.0.0"))

    text = render_diff(report, "text")
    data = json.loads(render_diff(report, "json"))
    markdown = render_diff(report, "markdown")

    assert "filter-safety-case · filter-a" in text
    assert "worse (significant)" in text and "model revision 1.9.1 → 2.0.0" in text
    assert "accuracy: 240 paired, " in text and "exact McNemar" in text
    assert text.splitlines()[-1].endswith("in 3 scores of 1 safety case")
    assert "p-values Holm-adjusted over 3 tests" in text
    assert data["schema_version"] == 2 and data["resamples"] == 2000 and data["seed"] == 0
    assert DiffReport.model_validate(data) == report
    assert "| score | base | head | Δ | 95% CI | p (Holm) | gate | |" in markdown
    assert "🔴 worse (significant)" in markdown
    assert "<details><summary>3 node(s) changed</summary>" in markdown


def test_markdown_escapes_html_from_names(tmp_path: Path) -> None:
    base, head = SyntheticStore(tmp_path / "base"), SyntheticStore(tmp_path / "head")
    for synthetic, value in ((base, 0.1), (head, 0.2)):
        synthetic.safety_case(
            "sc",
            [ScoreValue(name="s", value=value, primary=True)],
            {"InferenceService/<img src=x onerror=alert(1)>": "s" * 20},
        )

    markdown = render_diff(_diff(base, head), "markdown")

    assert "<img" not in markdown and "&lt;img src=x onerror=alert(1)&gt;" in markdown
