"""`runners.analysis` statistics: proportion and mean intervals, checked against known values."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from runners import analysis
from runners.analysis import Interval, mean_interval, proportion_interval


def test_wilson_matches_known_values() -> None:
    # Wilson (1927) intervals at 95% as tabulated by Newcombe (1998), Table I.
    assert proportion_interval(0, 10) == (0.0, 0.0, pytest.approx(0.2775, abs=1e-4), 0.95)
    five = proportion_interval(5, 10)
    assert (five.low, five.high) == (
        pytest.approx(0.2366, abs=1e-4),
        pytest.approx(0.7634, abs=1e-4),
    )
    assert proportion_interval(10, 10).high == 1.0
    assert proportion_interval(81, 263) == (
        pytest.approx(81 / 263),
        pytest.approx(0.2553, abs=1e-4),
        pytest.approx(0.3662, abs=1e-4),
        0.95,
    )


def test_clopper_pearson_is_exact_and_wider() -> None:
    # Clopper-Pearson 95% for 0/10: [0, 1 - 0.025 ** (1/10)].
    exact = proportion_interval(0, 10, method="clopper-pearson")
    assert exact.high == pytest.approx(1 - 0.025 ** (1 / 10))
    wilson = proportion_interval(3, 40)
    cp = proportion_interval(3, 40, method="clopper-pearson")
    assert cp.low < wilson.low and cp.high > wilson.high
    cc = proportion_interval(3, 40, method="wilson-cc")
    assert cc.low < wilson.low and cc.high > wilson.high


def test_confidence_widens_the_interval() -> None:
    narrow = proportion_interval(30, 100, confidence=0.8)
    wide = proportion_interval(30, 100, confidence=0.99)
    assert wide.low < narrow.low < 0.3 < narrow.high < wide.high
    assert wide.confidence == 0.99


@pytest.mark.parametrize(
    ("successes", "n", "message"),
    [
        (0, 0, "n must be a positive whole number"),
        (11, 10, r"successes must be a whole number within \[0, 10\]"),
        (-1, 10, "successes must be"),
        (1.5, 10, "successes must be"),
    ],
)
def test_proportion_rejects_impossible_counts(successes: float, n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        proportion_interval(successes, n)  # type: ignore[arg-type]


def test_mean_t_interval_matches_the_formula() -> None:
    values = [2.0, 4.0, 4.0, 5.0, 7.0, 8.0]
    got = mean_interval(values)
    # mean 5, sample sd 2.1909, t(0.975, 5) = 2.5706.
    half = 2.5706 * 2.1909 / 6**0.5
    assert got == (5.0, pytest.approx(5 - half, abs=1e-3), pytest.approx(5 + half, abs=1e-3), 0.95)


def test_mean_bootstrap_is_reproducible_and_reads_arrow() -> None:
    rng = np.random.default_rng(7)
    values = rng.exponential(size=200)
    column = pa.chunked_array([values[:100], values[100:]])
    first = mean_interval(column, method="bootstrap", resamples=2000, seed=3)
    again = mean_interval(values, method="bootstrap", resamples=2000, seed=3)
    assert first == again
    assert first.low < first.estimate < first.high
    assert first.estimate == pytest.approx(values.mean())


def test_mean_of_equal_values_is_a_point() -> None:
    assert mean_interval([0.5, 0.5, 0.5]) == Interval(0.5, 0.5, 0.5, 0.95)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0], "at least 2 values"),
        ([1.0, float("nan")], "position 1 is nan"),
        ([1.0, None], "position 1 is nan"),
        (["a", "b"], "values must be numbers"),
    ],
)
def test_mean_rejects_bad_values(values: list[object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mean_interval(values)  # type: ignore[arg-type]


def test_exported_from_runners_analysis() -> None:
    assert {"Interval", "mean_interval", "proportion_interval"} <= set(analysis.__all__)
