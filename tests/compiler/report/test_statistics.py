"""The paired statistics of `auditc diff`, checked against scipy and statsmodels on the same data.

Each test plants a known effect (or none) in per-instance values and computes the
same statistic directly with scipy/statsmodels; a planted null must give p-values
that are not systematically small.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from compiler.report._statistics import PairedStatistics, holm, paired_statistics
from schemas import ScoreAggregate

RESAMPLES = 2000


def _table(values: np.ndarray, groups: np.ndarray | None = None) -> pa.Table:
    columns = {"_index_": pa.array(np.arange(len(values)), pa.int64()), "value": values}
    if groups is not None:
        columns["group"] = pa.array([str(g) for g in groups])
    return pa.table(columns)


def _paired(
    old: np.ndarray,
    new: np.ndarray,
    aggregate: ScoreAggregate | None = None,
    groups: np.ndarray | None = None,
    seed: int = 0,
) -> PairedStatistics:
    found = paired_statistics(
        _table(old, groups), _table(new, groups), aggregate, 0.95, RESAMPLES, seed
    )
    assert isinstance(found, PairedStatistics), found
    return found


def _exchangeable(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two runs with no effect: each instance's two values come from one distribution."""
    chance = rng.beta(0.5, 1.5, n)  # instance difficulty
    return (rng.random(n) < chance).astype(np.float64), (rng.random(n) < chance).astype(np.float64)


def test_binary_values_get_the_exact_mcnemar_test_of_statsmodels() -> None:
    rng = np.random.default_rng(1)
    old = (rng.random(400) < 0.8).astype(np.float64)
    # Planted regression: 15% of correct answers become wrong, 3% of wrong ones right.
    new = np.where(old == 1, rng.random(400) >= 0.15, rng.random(400) < 0.03).astype(np.float64)

    found = _paired(old, new)

    table = [
        [np.sum((old == 1) & (new == 1)), np.sum((old == 1) & (new == 0))],
        [np.sum((old == 0) & (new == 1)), np.sum((old == 0) & (new == 0))],
    ]
    assert found.test == "mcnemar"
    assert found.p_value == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-12)
    assert found.p_value < 1e-6
    assert found.delta == pytest.approx(new.mean() - old.mean())
    assert found.changed == table[0][1] + table[1][0]


def test_the_interval_is_scipys_paired_bootstrap_of_the_change() -> None:
    rng = np.random.default_rng(2)
    old = rng.normal(0.5, 0.2, 300)
    new = old + rng.normal(0.05, 0.1, 300)  # planted shift of +0.05

    found = _paired(old, new, seed=7)

    expected = stats.bootstrap(
        (new - old,),
        np.mean,
        n_resamples=RESAMPLES,
        confidence_level=0.95,
        method="BCa",
        rng=np.random.default_rng(7),
    ).confidence_interval
    assert found.low == pytest.approx(expected.low, rel=1e-9)
    assert found.high == pytest.approx(expected.high, rel=1e-9)
    assert found.low < 0.05 < found.high and found.low > 0


def test_continuous_values_get_scipys_paired_permutation_test() -> None:
    rng = np.random.default_rng(3)
    old = rng.normal(0.5, 0.2, 250)
    new = old + rng.normal(0.02, 0.1, 250)

    found = _paired(old, new, seed=11)

    expected = stats.permutation_test(
        (new - old,),
        np.mean,
        permutation_type="samples",
        n_resamples=RESAMPLES,
        rng=np.random.default_rng(11),
    )
    assert found.test == "permutation"
    assert found.p_value == pytest.approx(expected.pvalue, rel=1e-9)


def _max_gap(values: np.ndarray, groups: np.ndarray) -> float:
    rates = [values[groups == g].mean() for g in np.unique(groups)]
    return float(max(rates) - min(rates))


def test_a_max_gap_is_recomputed_over_resampled_instances() -> None:
    rng = np.random.default_rng(4)
    groups = np.repeat(np.array(["a", "b", "c", "d"]), 150)
    old = (rng.random(600) < 0.1).astype(np.float64)
    # Planted: group "c" gets flagged far more often in the new run.
    new = np.where(groups == "c", np.maximum(old, rng.random(600) < 0.3), old).astype(np.float64)
    aggregate = ScoreAggregate(kind="max_gap", group="group")

    found = _paired(old, new, aggregate, groups, seed=5)

    planted = _max_gap(new, groups) - _max_gap(old, groups)
    assert found.delta == pytest.approx(planted)
    codes = np.unique(groups, return_inverse=True)[1]
    expected = stats.bootstrap(
        (old, new, codes),
        lambda o, n, g: _max_gap(n, g) - _max_gap(o, g),
        paired=True,
        vectorized=False,
        n_resamples=RESAMPLES,
        confidence_level=0.95,
        method="BCa",
        rng=np.random.default_rng(5),
    ).confidence_interval
    assert found.low is not None and found.high is not None
    assert found.low == pytest.approx(expected.low, rel=1e-9)
    assert found.high == pytest.approx(expected.high, rel=1e-9)
    assert 0 < found.low < planted < found.high
    assert found.test == "permutation" and found.p_value < 0.001


def test_a_ratio_is_recomputed_from_numerators_and_denominators() -> None:
    rng = np.random.default_rng(6)
    predicted_old = (rng.random(500) < 0.4).astype(np.float64)
    predicted_new = (rng.random(500) < 0.4).astype(np.float64)
    truth = (rng.random(500) < 0.5).astype(np.float64)

    def table(predicted: np.ndarray) -> pa.Table:
        return pa.table(
            {
                "_index_": pa.array(np.arange(500), pa.int64()),
                "value": predicted * truth,
                "predicted": predicted,
            }
        )

    aggregate = ScoreAggregate(kind="ratio", denominator="predicted")
    found = paired_statistics(
        table(predicted_old), table(predicted_new), aggregate, 0.95, RESAMPLES, 0
    )

    assert isinstance(found, PairedStatistics)
    precision = [(p * truth).sum() / p.sum() for p in (predicted_old, predicted_new)]
    assert found.delta == pytest.approx(precision[1] - precision[0])
    assert found.low is not None and found.high is not None and found.low < found.delta < found.high


@pytest.mark.parametrize(
    "kind",
    ["binary", "continuous", "max_gap"],
)
def test_a_planted_null_gives_p_values_that_are_not_systematically_small(kind: str) -> None:
    rng = np.random.default_rng(8)
    p_values = []
    for trial in range(60):
        groups = np.repeat(np.array(["a", "b", "c"]), 60)
        if kind == "continuous":
            old = rng.normal(0.5, 0.2, 180)
            new = old + rng.normal(0.0, 0.1, 180)
            aggregate = None
        else:
            old, new = _exchangeable(180, rng)
            aggregate = ScoreAggregate(kind="max_gap", group="group") if kind == "max_gap" else None
        found = paired_statistics(
            _table(old, groups),
            _table(new, groups),
            aggregate,
            0.95,
            500,
            trial,
        )
        assert isinstance(found, PairedStatistics)
        p_values.append(found.p_value)

    p = np.array(p_values)
    assert np.mean(p < 0.05) <= 0.12  # about 5 % expected (McNemar's exact test is conservative)
    assert np.mean(p) > 0.35  # uniform p-values have mean 0.5
    assert stats.kstest(p, "uniform").pvalue > 0.001 or kind == "binary"


def test_holm_is_statsmodels_multipletests() -> None:
    p_values = [0.01, 0.04, 0.03, 0.2, 0.001]

    assert holm(p_values) == pytest.approx(list(multipletests(p_values, method="holm")[1]))
    assert holm([]) == []


def test_unpaired_and_undefined_cases_are_explained() -> None:
    one = _table(np.array([1.0, 0.0]))
    far = pa.table({"_index_": pa.array([10, 11], pa.int64()), "value": [1.0, 0.0]})

    assert (
        paired_statistics(one, far, None, 0.95, RESAMPLES, 0) == "only 0 instance(s) in both runs"
    )
