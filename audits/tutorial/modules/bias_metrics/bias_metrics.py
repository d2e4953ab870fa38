"""Metrics for auditing a binary offensive-language filter: per-row predictions,
accuracy/precision/recall, and error rates per group with Wilson confidence intervals.

These are the tutorial's Python-function methods. Each takes its inputs as
`pyarrow.dataset.Dataset` objects and returns a pyarrow Table (auditc's method runner
checks it against the method's declared output columns and stores it as a Measurement).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from runners.analysis import proportion_interval

__all__ = ["classification_metrics", "predictions", "rates_by_group"]


def predictions(
    evaluation: ds.Dataset,
    dataset: ds.Dataset,
    threshold: float,
    group_column: str | None = None,
) -> pa.Table:
    """One row per dataset row: its label, the filter's score, the decision and whether it was right.

    Scores of replications are averaged; rows whose every replication failed are left out
    (the evaluation keeps their errors).

    Args:
        evaluation: the Evaluation output (`_index_`, `_replication_`, `score`, `_error_`).
        dataset: the Dataset (`_index_`, `label`, and `group_column` if given).
        threshold: a score at or above it counts as "offensive".
        group_column: a dataset column copied to the output as `group`.
    """
    scored = evaluation.to_table(columns=["_index_", "score"], filter=pc.field("_error_").is_null())
    mean_scores = scored.group_by("_index_").aggregate([("score", "mean")])
    columns = ["_index_", "label"] + ([group_column] if group_column else [])
    rows = dataset.to_table(columns=columns).join(mean_scores, "_index_", join_type="inner")
    predicted = pc.cast(pc.greater_equal(rows["score_mean"], threshold), pa.int8())
    correct = pc.cast(pc.equal(predicted, pc.cast(rows["label"], pa.int8())), pa.float64())
    table = pa.table(
        {
            "_index_": rows["_index_"],
            "label": pc.cast(rows["label"], pa.int8()),
            "score": rows["score_mean"],
            "predicted": predicted,
            "correct": correct,
        }
    )
    if group_column:
        table = table.append_column("group", pc.cast(rows[group_column], pa.string()))
    return table.sort_by("_index_")


def _rate(metric: str, numerator: int, denominator: int, confidence: float) -> dict[str, object]:
    if denominator == 0:
        return {"metric": metric, "value": None, "ci_low": None, "ci_high": None,
                "numerator": 0, "denominator": 0}  # fmt: skip
    # Wilson: reliable for the small counts and 0% / 100% rates per-group error rates have.
    interval = proportion_interval(numerator, denominator, confidence=confidence)
    return {
        "metric": metric,
        "value": interval.estimate,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "numerator": numerator,
        "denominator": denominator,
    }


def _counts(table: pa.Table) -> dict[str, int]:
    label = table["label"].to_numpy()
    predicted = table["predicted"].to_numpy()
    return {
        "tp": int(((label == 1) & (predicted == 1)).sum()),
        "fp": int(((label == 0) & (predicted == 1)).sum()),
        "tn": int(((label == 0) & (predicted == 0)).sum()),
        "fn": int(((label == 1) & (predicted == 0)).sum()),
    }


def classification_metrics(predictions: ds.Dataset, confidence: float = 0.95) -> pa.Table:
    """Accuracy, precision, recall, false-positive rate (with Wilson intervals) and F1.

    Returns:
        One row per metric: `metric`, `value`, `ci_low`, `ci_high`, `numerator`,
        `denominator` (F1 has no interval; a metric whose denominator is 0 is null).
    """
    c = _counts(predictions.to_table(columns=["label", "predicted"]))
    total = sum(c.values())
    rows = [
        _rate("accuracy", c["tp"] + c["tn"], total, confidence),
        _rate("precision", c["tp"], c["tp"] + c["fp"], confidence),
        _rate("recall", c["tp"], c["tp"] + c["fn"], confidence),
        _rate("false_positive_rate", c["fp"], c["fp"] + c["tn"], confidence),
    ]
    precision, recall = rows[1]["value"], rows[2]["value"]
    f1 = (
        2 * precision * recall / (precision + recall)  # type: ignore[operator]
        if precision is not None and recall is not None and precision + recall > 0  # type: ignore[operator]
        else None
    )
    rows.append({"metric": "f1", "value": f1, "ci_low": None, "ci_high": None,
                 "numerator": None, "denominator": None})  # fmt: skip
    return pa.Table.from_pylist(rows)


def rates_by_group(predictions: ds.Dataset, confidence: float = 0.95) -> pa.Table:
    """False-positive and true-positive rates per group, with Wilson intervals.

    Returns:
        One row per group, highest false-positive rate first: `group`, `n_harmless`,
        `false_positives`, `fpr`, `fpr_low`, `fpr_high`, `n_offensive`, `true_positives`,
        `tpr`, `tpr_low`, `tpr_high`.
    """
    table = predictions.to_table(columns=["group", "label", "predicted"])
    rows = []
    for group in sorted(set(table["group"].to_pylist())):
        c = _counts(table.filter(pc.equal(table["group"], group)))
        fpr = _rate("fpr", c["fp"], c["fp"] + c["tn"], confidence)
        tpr = _rate("tpr", c["tp"], c["tp"] + c["fn"], confidence)
        rows.append(
            {
                "group": group,
                "n_harmless": c["fp"] + c["tn"],
                "false_positives": c["fp"],
                "fpr": fpr["value"],
                "fpr_low": fpr["ci_low"],
                "fpr_high": fpr["ci_high"],
                "n_offensive": c["tp"] + c["fn"],
                "true_positives": c["tp"],
                "tpr": tpr["value"],
                "tpr_low": tpr["ci_low"],
                "tpr_high": tpr["ci_high"],
            }
        )
    rows.sort(key=lambda r: (-(r["fpr"] or 0.0), r["group"]))  # type: ignore[operator]
    return pa.Table.from_pylist(rows)
