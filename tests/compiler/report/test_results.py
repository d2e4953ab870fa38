"""Which runs the report shows, their systems under test and lineage, and per-instance values."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from report_store import SYSTEMS, SyntheticStore

from compiler.report import NO_SYSTEM, SafetyCase, load_results, read_instances
from schemas import ScoreValue, StoreError


def test_latest_complete_run_per_method_and_system(synthetic_store: SyntheticStore) -> None:
    results = load_results(synthetic_store.store)

    assert [a.method for a in results.audits] == ["filter-safety-case", "latency-case"]
    filter_audit = results.audits[0]
    assert [c.system_label for c in filter_audit.cases] == ["filter-a", "filter-b", "filter-c"]
    # filter-a ran twice: the later run (threshold 0.5) is shown, the first is superseded.
    shown_a = filter_audit.cases[0]
    superseded = [m for m in results.superseded if m.name == "filter-safety-case"]
    assert {m.status for m in superseded} == {"complete", "failed"}
    older_complete = next(m for m in superseded if m.status == "complete")
    assert older_complete.finished_at < shown_a.manifest.finished_at
    assert shown_a.manifest.spec["spec"]["parameters"] == {"threshold": 0.5}
    # The failed run of filter-c finished last but does not replace its complete run.
    failed = next(m for m in superseded if m.status == "failed")
    assert failed.finished_at > filter_audit.cases[2].manifest.finished_at


def test_systems_come_from_the_evaluations_upstream(synthetic_store: SyntheticStore) -> None:
    results = load_results(synthetic_store.store)

    by_service = {s.service: s for s in results.systems()}
    assert sorted(by_service) == ["filter-a", "filter-b", "filter-c"]
    for spec in SYSTEMS:
        system = by_service[spec.service]
        assert system.model == spec.model
        assert system.model_revision == spec.revision
    case = results.audits[0].cases[1]
    assert [m.kind for m in case.lineage] == ["Method", "Evaluation", "Dataset"]
    assert [m.name for m in case.measurements] == ["fpr-by-group"]
    assert case.missing == ()


def test_scores_primary_first_and_spec_from_newest_run(synthetic_store: SyntheticStore) -> None:
    audit = load_results(synthetic_store.store).audits[0]

    assert audit.score_names() == ["max_fpr_gap", "accuracy", "flag_rate"]
    assert audit.spec_of("accuracy").gate_min == 0.8


def test_a_case_without_a_service_and_missing_upstream(tmp_path: Path) -> None:
    synthetic = SyntheticStore(tmp_path / "store")
    synthetic.safety_case(
        "data-only",
        [ScoreValue(name="rows", value=3, primary=True)],
        {"Dataset/gone": "0" * 20},
    )

    case = load_results(synthetic.store).cases[0]

    assert case.system_label == NO_SYSTEM
    assert [r.key for r in case.missing] == ["Dataset/gone"]


def test_an_empty_store_has_no_audits(tmp_path: Path) -> None:
    results = load_results(SyntheticStore(tmp_path / "store").store)

    assert results.audits == () and results.superseded == ()


def test_a_complete_case_without_scores_is_a_store_error(tmp_path: Path) -> None:
    synthetic = SyntheticStore(tmp_path / "store")
    synthetic.node("Method", "broken", {"output": {"kind": "SafetyCase"}})

    with pytest.raises(StoreError, match=r"broken/.*scores\.json"):
        load_results(synthetic.store)


def _case_with_instances(tmp_path: Path, table: pa.Table) -> tuple[SyntheticStore, SafetyCase]:
    synthetic = SyntheticStore(tmp_path / "store")
    synthetic.safety_case(
        "sc", [ScoreValue(name="acc", value=0.5, primary=True)], {}, instances={"acc": table}
    )
    return synthetic, load_results(synthetic.store).cases[0]


def test_instances_are_averaged_per_index_and_nulls_dropped(tmp_path: Path) -> None:
    table = pa.table(
        {"_index_": pa.array([2, 0, 2, 1], pa.int32()), "value": [1.0, 0.0, 0.0, None]}
    )
    synthetic, case = _case_with_instances(tmp_path, table)

    values = read_instances(synthetic.store, case, "acc")

    assert values is not None
    assert values.to_pydict() == {"_index_": [0, 2], "value": [0.0, 0.5]}
    assert read_instances(synthetic.store, case, "other") is None


def test_instances_without_the_contract_columns_are_refused(tmp_path: Path) -> None:
    synthetic, case = _case_with_instances(tmp_path, pa.table({"row": [1], "score": [0.5]}))

    with pytest.raises(
        StoreError, match=r"acc\.parquet: expected columns '_index_', 'value', found row, score"
    ):
        read_instances(synthetic.store, case, "acc")


def test_unreadable_instances_are_a_store_error(tmp_path: Path) -> None:
    synthetic, case = _case_with_instances(tmp_path, pa.table({"_index_": [0], "value": [1.0]}))
    path = Path(synthetic.store.path(case.path, "_case", "instances", "acc.parquet"))
    path.write_bytes(b"not parquet")

    with pytest.raises(StoreError, match="cannot read"):
        read_instances(synthetic.store, case, "acc")
