"""A score's confidence interval, from its per-instance values.

`analysis.score(..., instances=…)` stores one with every score, at the confidence its
gate asks for (default 95 %): Wilson's interval for a proportion (the mean of 0/1
values), else a bootstrap that recomputes the score itself — a ratio, a max gap over
groups — over resampled instances. A confidence gate (`gate: {max: 0.1, confidence:
0.95}`) is decided on this interval.
"""

from __future__ import annotations

import math

from schemas import InstanceArrays, MethodError, ScoreInterval, bootstrap_interval

from ._stats import proportion_interval

__all__ = ["DEFAULT_CONFIDENCE", "given_interval", "score_interval"]

DEFAULT_CONFIDENCE = 0.95
"""The level of a score's interval when its gate asks for none."""


def score_interval(arrays: InstanceArrays, confidence: float) -> ScoreInterval | None:
    """The interval of the score the per-instance values aggregate to.

    Returns:
        The interval, or None with fewer than two instances or when the score is
        undefined in the resamples.
    """
    n = len(arrays)
    if n < 2:
        return None
    if arrays.binary:
        found_p = proportion_interval(int(arrays.values.sum()), n, confidence=confidence)
        return ScoreInterval(
            low=found_p.low, high=found_p.high, confidence=confidence, method="wilson"
        )
    found = bootstrap_interval(arrays.statistic, n, confidence)
    if found is None:
        return None
    low, high, method = found
    return ScoreInterval(low=low, high=high, confidence=confidence, method=method)


def given_interval(
    method: str, name: str, value: float, interval: object, confidence: float
) -> ScoreInterval:
    """An interval the method computed itself, as `(low, high)`.

    Raises:
        MethodError: not two finite numbers with low <= value <= high.
    """
    where = f"Method/{method}: interval of score {name!r}"
    try:
        low, high = (float(x) for x in interval)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        raise MethodError(f"{where}: expected (low, high), got {interval!r}") from exc
    if not (math.isfinite(low) and math.isfinite(high)) or not low <= value <= high:
        raise MethodError(
            f"{where}: ({low!r}, {high!r}) must be finite and contain the value {value!r}"
        )
    return ScoreInterval(low=low, high=high, confidence=confidence, method="given by the method")
