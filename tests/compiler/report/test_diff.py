"""Run-to-run comparison: paired bootstrap intervals, significance, node changes, renderings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from report_store import SYSTEMS, SyntheticStore

from compiler.report import (
    BootstrapOptions,
    DiffReport,
    DiffSide,
    diff_results,
    load_results,
    paired_bootstrap,
    render_diff,
)
from compiler.report import _diff as diff_module
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


def test_identical_runs_show_no_significant_change(tmp_path: Path) -> None:
    report = _diff(_store(tmp_path / "a"), _store(tmp_path / "b"))

    (case,) = report.cases
    assert case.status == "unchanged" and case.base_id == case.head_id
    accuracy = next(s for s in case.scores if s.name == "accuracy")
    assert accuracy.delta == 0 and accuracy.direction == "same"
    assert accuracy.interval is not None and accuracy.interval.low == accuracy.interval.high == 0
    assert accuracy.significant is False
    assert report.significant == [] and report.nodes == []


def test_a_planted_regression_is_detected_with_its_sign(tmp_path: Path) -> None:
    base = _store(tmp_path / "base")
    head = _store(tmp_path / "head", flip=0.2, revision="2.0.0")

    report = _diff(base, head)

    (case,) = report.cases
    assert case.status == "changed"
    accuracy = next(s for s in case.scores if s.name == "accuracy")
    assert accuracy.delta is not None and accuracy.delta < -0.1
    assert accuracy.interval is not None
    assert accuracy.interval.low < accuracy.interval.mean_delta < accuracy.interval.high < 0
    assert accuracy.interval.mean_delta == pytest.approx(accuracy.delta)
    assert accuracy.interval.paired == 240 and accuracy.interval.unpaired == 0
    assert accuracy.significant is True and accuracy.direction == "worse"
    assert accuracy.verdict == "worse (significant)"
    # max_fpr_gap has no per-instance values: a delta, but no interval and no verdict on significance.
    gap = next(s for s in case.scores if s.name == "max_fpr_gap")
    assert gap.interval is None and gap.significant is None
    assert gap.note == "no per-instance values in either run"


def test_an_improvement_is_better_and_its_interval_is_above_zero(tmp_path: Path) -> None:
    report = _diff(_store(tmp_path / "base", flip=0.2, revision="2.0.0"), _store(tmp_path / "head"))

    accuracy = next(s for s in report.cases[0].scores if s.name == "accuracy")
    assert accuracy.significant is True and accuracy.direction == "better"
    assert accuracy.interval is not None and accuracy.interval.low > 0


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


def test_bootstrap_interval_matches_the_normal_approximation() -> None:
    rng = np.random.default_rng(1)
    diffs = rng.normal(0.1, 1.0, size=4000)

    low, high = paired_bootstrap(diffs, BootstrapOptions(resamples=2000, seed=0))

    half = 1.96 * diffs.std() / np.sqrt(len(diffs))
    assert low < diffs.mean() < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)


def test_bootstrap_is_seeded_and_chunking_does_not_change_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    diffs = np.random.default_rng(2).normal(size=500)
    options = BootstrapOptions(resamples=1000, seed=42)

    whole = paired_bootstrap(diffs, options)
    monkeypatch.setattr(diff_module, "MAX_RESAMPLE_CELLS", 1700)  # 3 resamples per chunk
    chunked = paired_bootstrap(diffs, options)

    assert whole == chunked
    assert paired_bootstrap(diffs, BootstrapOptions(resamples=1000, seed=43)) != whole


def test_a_single_changed_instance_is_not_significant() -> None:
    diffs = np.zeros(240)
    diffs[17] = -1.0

    low, high = paired_bootstrap(diffs)

    assert low < 0 and high == 0  # the interval touches 0: no evidence of a change


def test_bootstrap_options_are_checked() -> None:
    with pytest.raises(UsageError, match="--resamples must be at least 100, got 10"):
        BootstrapOptions(resamples=10)
    with pytest.raises(UsageError, match=r"--confidence must be in \[0.5, 1\), got 1.0"):
        BootstrapOptions(confidence=1.0)


def test_renderings(tmp_path: Path) -> None:
    report = _diff(_store(tmp_path / "base"), _store(tmp_path / "head", flip=0.2, revision="2.0.0"))

    text = render_diff(report, "text")
    data = json.loads(render_diff(report, "json"))
    markdown = render_diff(report, "markdown")

    assert "filter-safety-case · filter-a" in text
    assert "worse (significant)" in text and "model revision 1.9.1 → 2.0.0" in text
    assert (
        text.splitlines()[-1]
        == "1 significant change (0 better, 1 worse) in 3 scores of 1 safety case"
    )
    assert data["schema_version"] == 1 and data["resamples"] == 2000 and data["seed"] == 0
    assert DiffReport.model_validate(data) == report
    assert "| score | base | head | Δ | 95% CI | |" in markdown
    assert "🔴 worse (significant)" in markdown
    assert "<details><summary>3 node(s) changed</summary>" in markdown
