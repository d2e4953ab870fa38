"""Confidence intervals that methods need again and again, computed by scipy.

Proportions (a refusal rate, a false-positive rate) get a Wilson or Clopper–Pearson
interval; means (a score per instance) a Student t or bootstrap interval. Audits call
these instead of writing the formulas out, so every safety case computes them alike.

Example (a Python-function method):
    >>> from runners.analysis import proportion_interval, mean_interval
    >>> proportion_interval(3, 40)                                   # doctest: +ELLIPSIS
    Interval(estimate=0.075, low=0.025..., high=0.198..., confidence=0.95)
    >>> mean_interval([0.2, 0.4, 0.9], method="t").estimate          # doctest: +ELLIPSIS
    0.5
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Interval", "mean_interval", "proportion_interval"]

DEFAULT_CONFIDENCE = 0.95
ProportionMethod = Literal["wilson", "wilson-cc", "clopper-pearson"]
MeanMethod = Literal["t", "bootstrap"]

# scipy's names for the proportion methods (`BinomTestResult.proportion_ci`).
_SCIPY_PROPORTION = {"wilson": "wilson", "wilson-cc": "wilsoncc", "clopper-pearson": "exact"}


class Interval(NamedTuple):
    """A point estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")


def proportion_interval(
    successes: int,
    n: int,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    method: ProportionMethod = "wilson",
) -> Interval:
    """The proportion `successes / n` with a confidence interval for a binomial proportion.

    Args:
        successes: events counted (refusals, false positives); 0 ≤ successes ≤ n.
        n: trials; must be positive.
        confidence: two-sided confidence level.
        method: `wilson` (the default: stays inside [0, 1] and is reliable for small
            counts and for 0% and 100%), `wilson-cc` (with continuity correction) or
            `clopper-pearson` (exact, conservative: covers at least `confidence`).

    Returns:
        The estimate and bounds; the bounds are exactly 0 at 0 successes and 1 at n.

    Raises:
        ValueError: n is not positive, successes is outside [0, n], or an unknown method.
    """
    from scipy.stats import binomtest

    _check_confidence(confidence)
    if method not in _SCIPY_PROPORTION:
        raise ValueError(f"method must be one of {sorted(_SCIPY_PROPORTION)}, got {method!r}")
    if int(n) != n or n <= 0:
        raise ValueError(f"n must be a positive whole number, got {n!r}")
    if int(successes) != successes or not 0 <= successes <= n:
        raise ValueError(f"successes must be a whole number within [0, {n}], got {successes!r}")
    ci = binomtest(int(successes), int(n)).proportion_ci(
        confidence_level=confidence, method=_SCIPY_PROPORTION[method]
    )
    low = 0.0 if successes == 0 else float(ci.low)
    high = 1.0 if successes == n else float(ci.high)
    return Interval(successes / n, low, high, confidence)


def mean_interval(
    values: Iterable[float],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    method: MeanMethod = "t",
    resamples: int = 9999,
    seed: int = 0,
) -> Interval:
    """The mean of `values` with a confidence interval.

    Args:
        values: finite numbers (a list, a numpy array, a pyarrow array or column).
        confidence: two-sided confidence level.
        method: `t` (Student's t on the standard error: for roughly normal means, the
            usual case from a few dozen values on) or `bootstrap` (BCa bootstrap: for
            skewed values such as rare events, with `resamples` and a fixed `seed`).
        resamples: bootstrap resamples.
        seed: bootstrap seed, so that a re-run gives the same interval.

    Returns:
        The mean and bounds. With all values equal, the bounds equal the mean.

    Raises:
        ValueError: fewer than two values, a value that is not a finite number, or an
            unknown method.
    """
    import numpy as np
    from scipy import stats

    _check_confidence(confidence)
    array = _as_float_array(values)
    if array.size < 2:
        raise ValueError(f"a mean interval needs at least 2 values, got {array.size}")
    mean = float(array.mean())
    if np.all(array == array[0]):
        return Interval(mean, mean, mean, confidence)
    if method == "t":
        low, high = stats.t.interval(confidence, array.size - 1, loc=mean, scale=stats.sem(array))
    elif method == "bootstrap":
        result = stats.bootstrap(
            (array,),
            np.mean,
            confidence_level=confidence,
            n_resamples=resamples,
            method="BCa",
            rng=np.random.default_rng(seed),
        )
        low, high = result.confidence_interval
    else:
        raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}")
    return Interval(mean, float(low), float(high), confidence)


def _as_float_array(values: Iterable[float]) -> np.ndarray:
    """`values` as a 1-d float array; numpy, pyarrow, pandas and polars arrays convert as they are."""
    import numpy as np

    try:
        raw = values if hasattr(values, "__array__") else list(values)
        array = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"values must be numbers: {exc}") from exc
    if array.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        position = int(np.argmax(bad))
        raise ValueError(f"values must be finite numbers; position {position} is {array[position]}")
    return array
