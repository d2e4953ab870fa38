"""Paired statistics of a score between two runs: a test, an interval, and Holm's correction.

Two runs' per-instance values (`instances/<score>.parquet`) are paired on `_index_`.
What is computed depends on what the score is:

- the mean of 0/1 values (accuracy, a flag rate): the exact McNemar test on the
  discordant pairs (statsmodels);
- anything else — the mean of continuous values, or a score that is not a mean
  (`aggregate: ratio`, `max_gap`, `group_max`, `group_min`): a paired permutation test
  that swaps the two runs' values of randomly chosen instances and recomputes the
  score each time (scipy's `permutation_test`, sign flips over instances).

The interval is always a paired bootstrap of the change in the score itself: the same
instances are resampled for both runs and the score is recomputed on each side as it
aggregates (scipy's `bootstrap`). `holm` adjusts the p-values of one diff together
(statsmodels' `multipletests`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from schemas import (
    INDEX_COLUMN,
    MAX_RESAMPLE_CELLS,
    InstanceArrays,
    ScoreAggregate,
    bootstrap_interval,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["PairedStatistics", "holm", "paired_statistics"]

TestName = Literal["mcnemar", "permutation"]


@dataclass(frozen=True)
class PairedStatistics:
    """The paired comparison of one score between two runs."""

    paired: int
    """Instances present in both runs."""
    only_base: int
    only_head: int
    changed: int
    """Paired instances whose value (or denominator, or group) differs between the runs."""
    delta: float
    """The score over the paired instances: head − base."""
    low: float | None
    high: float | None
    interval_method: str | None
    test: TestName
    p_value: float


def paired_statistics(
    base: pa.Table,
    head: pa.Table,
    aggregate: ScoreAggregate | None,
    confidence: float,
    resamples: int,
    seed: int,
) -> PairedStatistics | str:
    """Pair two runs' per-instance values on `_index_` and compare the score they aggregate to.

    Args:
        base: `_index_`, `value` and the aggregate's columns of the old run.
        head: the same for the new run.
        aggregate: how the score aggregates (None: the mean).
        confidence: of the interval.
        resamples: bootstrap resamples and permutations.
        seed: of both, so that the output is reproducible.

    Returns:
        The statistics, or why there are none (too few paired instances, a score
        undefined on the paired instances).
    """
    import numpy as np

    joined = base.join(
        head, INDEX_COLUMN, join_type="inner", left_suffix="_base", right_suffix="_head"
    )
    paired = joined.num_rows
    only_base, only_head = base.num_rows - paired, head.num_rows - paired
    if paired < 2:
        return f"only {paired} instance(s) in both runs"
    both = _stacked(joined, base.column_names, aggregate)
    instances = np.arange(paired)
    delta = float(_change(both, instances, paired))
    if not np.isfinite(delta):
        return "the score is undefined on the instances both runs have"
    changed = _changed(joined, base.column_names)
    if changed == 0:
        return PairedStatistics(
            paired,
            only_base,
            only_head,
            0,
            delta,
            delta,
            delta,
            "no instance changed",
            "mcnemar" if both.binary else "permutation",
            1.0,
        )
    found = bootstrap_interval(
        lambda picks: _change(both, picks, paired), paired, confidence, resamples, seed
    )
    low, high, method = found if found is not None else (None, None, None)
    if both.binary:
        return PairedStatistics(
            paired,
            only_base,
            only_head,
            changed,
            delta,
            low,
            high,
            method,
            "mcnemar",
            _mcnemar(joined),
        )
    p_value = _permutation_p(both, paired, resamples, seed)
    return PairedStatistics(
        paired, only_base, only_head, changed, delta, low, high, method, "permutation", p_value
    )


def _stacked(
    joined: pa.Table, columns: list[str], aggregate: ScoreAggregate | None
) -> InstanceArrays:
    """Both runs' paired instances in one array: base rows 0..n-1, head rows n..2n-1."""
    import numpy as np

    def both(column: str) -> np.ndarray:
        name = column if column == INDEX_COLUMN else f"{column}_base"
        other = column if column == INDEX_COLUMN else f"{column}_head"
        return np.concatenate(
            [
                joined[name].to_numpy(zero_copy_only=False),
                joined[other].to_numpy(zero_copy_only=False),
            ]
        )

    denominator = aggregate.denominator if aggregate else None
    group = aggregate.group if aggregate else None
    return InstanceArrays(
        aggregate,
        both("value"),
        both(denominator) if denominator in columns else None,
        both(group) if group in columns else None,
    )


def _change(both: InstanceArrays, picks: np.ndarray, n: int) -> np.ndarray:
    """head − base of the score over the instances picked (the same ones on both sides)."""
    change: np.ndarray = both.statistic(picks + n) - both.statistic(picks)
    return change


def _changed(joined: pa.Table, columns: list[str]) -> int:
    import numpy as np

    differs = np.zeros(joined.num_rows, dtype=bool)
    for column in columns:
        if column == INDEX_COLUMN:
            continue
        old = joined[f"{column}_base"].to_numpy(zero_copy_only=False)
        new = joined[f"{column}_head"].to_numpy(zero_copy_only=False)
        differs |= old != new
    return int(differs.sum())


def _mcnemar(joined: pa.Table) -> float:
    """Exact McNemar test on the paired 0/1 values."""
    import numpy as np
    from statsmodels.stats.contingency_tables import mcnemar

    old = joined["value_base"].to_numpy() > 0.5
    new = joined["value_head"].to_numpy() > 0.5
    table = np.array(
        [[np.sum(old & new), np.sum(old & ~new)], [np.sum(~old & new), np.sum(~old & ~new)]]
    )
    return float(mcnemar(table, exact=True).pvalue)


def _permutation_p(both: InstanceArrays, n: int, resamples: int, seed: int) -> float:
    """Paired permutation test: swap the runs' values of random instances, recompute the score.

    scipy flips the signs of a one-sample statistic's observations; the observations
    here are instance numbers 1..n, and a flipped sign swaps that instance's runs.
    """
    import numpy as np
    from scipy import stats

    def statistic(signed: np.ndarray, axis: int = -1) -> np.ndarray:
        signed = np.moveaxis(signed, axis, -1)
        rows = np.abs(signed).astype(np.int64) - 1
        swapped = signed < 0
        head_rows = np.where(swapped, rows, rows + n)
        base_rows = np.where(swapped, rows + n, rows)
        return np.asarray(both.statistic(head_rows) - both.statistic(base_rows))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.permutation_test(
            (np.arange(1, n + 1, dtype=np.float64),),
            statistic,
            permutation_type="samples",
            vectorized=True,
            n_resamples=resamples,
            alternative="two-sided",
            batch=max(1, MAX_RESAMPLE_CELLS // n),
            rng=np.random.default_rng(seed),
        )
    p_value = float(result.pvalue)
    return p_value if np.isfinite(p_value) else 1.0


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels' `multipletests`), in the same order."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    adjusted = multipletests(p_values, method="holm")[1]
    return [float(p) for p in adjusted]
