"""What a score is, as a function of its per-instance values, and how a gate decides on it.

A score spec may declare how its value aggregates the per-instance values a method
exports with it (`instances/<score>.parquet`):

| `aggregate.kind` | the score is | needs |
| --- | --- | --- |
| `mean` (default) | the mean of `value` | — |
| `ratio` | `sum(value) / sum(<denominator>)` | `denominator` |
| `max_gap` | highest minus lowest per-group rate | `group` |
| `group_max` / `group_min` | the highest / lowest per-group rate | `group` |

A per-group rate is the group's mean of `value`, or `sum(value) / sum(<denominator>)`
when a denominator column is declared. Knowing this, the method runner checks that the
instances reproduce the exported value, and intervals and paired comparisons
(`auditc diff`) recompute the score itself over resampled instances — never a
stand-in such as the mean of a max-gap's instances.

`gate_outcome` is the three-valued gate: without `confidence` a gate compares the
value with its bounds; with it, the score's interval at that confidence must lie
within the bounds (`pass`), wholly outside them (`fail`), or else is `inconclusive`.

numpy is imported inside the functions that need it, so importing `schemas` stays light.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._base import ColumnName, SpecModel

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "GROUP_KINDS",
    "MAX_RESAMPLE_CELLS",
    "AggregateKind",
    "GateOutcome",
    "InstanceArrays",
    "ScoreAggregate",
    "ScoreInterval",
    "bootstrap_interval",
    "gate_outcome",
]

AggregateKind = Literal["mean", "ratio", "max_gap", "group_max", "group_min"]
GROUP_KINDS: tuple[AggregateKind, ...] = ("max_gap", "group_max", "group_min")
GateOutcome = Literal["pass", "fail", "inconclusive"]


class ScoreAggregate(SpecModel):
    """How a score's value is computed from its per-instance values.

    Example:
        >>> ScoreAggregate(kind="max_gap", group="identity").group
        'identity'
    """

    kind: AggregateKind = "mean"
    """`mean`, `ratio` (sum of values over sum of denominators), `max_gap` (highest minus
    lowest per-group rate), `group_max` or `group_min` (highest or lowest per-group rate)."""
    group: ColumnName | None = None
    """The column of the per-instance values naming each instance's group (group kinds)."""
    denominator: ColumnName | None = None
    """The column holding each instance's denominator (`ratio`; optional for group kinds,
    whose per-group rate is then a ratio instead of a mean)."""

    @model_validator(mode="after")
    def _columns(self) -> ScoreAggregate:
        if self.kind in GROUP_KINDS and self.group is None:
            raise ValueError(f"aggregate kind {self.kind!r} needs 'group' (the group column)")
        if self.kind not in GROUP_KINDS and self.group is not None:
            raise ValueError(f"aggregate kind {self.kind!r} takes no 'group'")
        if self.kind == "ratio" and self.denominator is None:
            raise ValueError("aggregate kind 'ratio' needs 'denominator' (the denominator column)")
        if self.kind == "mean" and self.denominator is not None:
            raise ValueError("aggregate kind 'mean' takes no 'denominator' (use kind 'ratio')")
        if self.group is not None and self.group in ("value", self.denominator):
            raise ValueError(f"'group' cannot be the column {self.group!r}")
        if self.denominator == "value":
            raise ValueError("'denominator' cannot be the column 'value'")
        return self

    @property
    def columns(self) -> list[str]:
        """The extra columns the per-instance values carry, besides `_index_` and `value`."""
        return [c for c in (self.group, self.denominator) if c is not None]

    def describe(self) -> str:
        """A few words for messages: `the mean`, `the max gap over identity`."""
        over = f" over {self.group}" if self.group else ""
        per = f" (per-group {self.denominator} ratio)" if self.denominator and self.group else ""
        text = {
            "mean": "the mean",
            "ratio": f"sum(value) / sum({self.denominator})",
            "max_gap": "the max gap",
            "group_max": "the highest group rate",
            "group_min": "the lowest group rate",
        }[self.kind]
        return text + over + per


class ScoreInterval(BaseModel):
    """A two-sided confidence interval of a score, stored with it in `scores.json`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float
    high: float
    confidence: float = Field(gt=0, lt=1)
    method: str
    """How it was computed (`wilson`, `bootstrap percentile, 2000 resamples`, `given`)."""

    @model_validator(mode="after")
    def _ordered(self) -> ScoreInterval:
        if not self.low <= self.high:
            raise ValueError(f"interval low ({self.low}) must be <= high ({self.high})")
        return self


def gate_outcome(
    value: float,
    gate_min: float | None,
    gate_max: float | None,
    confidence: float | None = None,
    interval: ScoreInterval | None = None,
) -> GateOutcome | None:
    """Decide a gate: `pass`, `fail`, `inconclusive`, or None when there is no gate.

    Without `confidence` the value itself is compared with the (inclusive) bounds.
    With it, `interval` (at that confidence) decides: within the bounds → pass, wholly
    outside them → fail, straddling a bound (or no interval) → inconclusive.
    """
    if gate_min is None and gate_max is None:
        return None
    if confidence is None:
        inside = (gate_min is None or value >= gate_min) and (gate_max is None or value <= gate_max)
        return "pass" if inside else "fail"
    if interval is None:
        return "inconclusive"
    low, high = interval.low, interval.high
    if (gate_min is None or low >= gate_min) and (gate_max is None or high <= gate_max):
        return "pass"
    if (gate_min is not None and high < gate_min) or (gate_max is not None and low > gate_max):
        return "fail"
    return "inconclusive"


class InstanceArrays:
    """Per-instance values as numpy arrays, and the score they aggregate to.

    `statistic(picks)` recomputes the score over rows picked by an index array of any
    shape `(..., m)` (one resample per leading position), vectorised — what a bootstrap
    or a permutation test calls thousands of times.
    """

    def __init__(
        self,
        aggregate: ScoreAggregate | None,
        values: npt.ArrayLike,
        denominators: npt.ArrayLike | None = None,
        groups: npt.ArrayLike | None = None,
    ) -> None:
        import numpy as np

        self.aggregate = aggregate or ScoreAggregate()
        self.values = np.asarray(values, dtype=np.float64)
        self.denominators = (
            None if denominators is None else np.asarray(denominators, dtype=np.float64)
        )
        self.group_names: list[str] = []
        self.codes: np.ndarray | None = None
        if groups is not None:
            names, codes = np.unique(
                np.asarray(groups, dtype=object).astype(str), return_inverse=True
            )
            self.group_names = [str(n) for n in names]
            self.codes = codes.astype(np.int64)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def binary(self) -> bool:
        """Whether every value is 0 or 1 and the score is their mean."""
        import numpy as np

        return self.aggregate.kind == "mean" and bool(np.isin(self.values, (0.0, 1.0)).all())

    def score(self) -> float:
        """The score over every instance."""
        import numpy as np

        return float(self.statistic(np.arange(len(self))))

    def statistic(self, picks: np.ndarray) -> np.ndarray:
        """The score over `values[picks]`, reduced along the last axis (NaN when undefined)."""
        import numpy as np

        picks = np.asarray(picks, dtype=np.int64)
        kind = self.aggregate.kind
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups in a resample
            if kind == "mean":
                return np.asarray(self.values[picks].mean(axis=-1))
            if kind == "ratio":
                assert self.denominators is not None
                return np.asarray(
                    self.values[picks].sum(axis=-1) / self.denominators[picks].sum(axis=-1)
                )
            rates = self._group_rates(picks)
            if kind == "group_max":
                return np.asarray(np.nanmax(rates, axis=-1))
            if kind == "group_min":
                return np.asarray(np.nanmin(rates, axis=-1))
            return np.asarray(np.nanmax(rates, axis=-1) - np.nanmin(rates, axis=-1))

    def _group_rates(self, picks: np.ndarray) -> np.ndarray:
        """Per-group rates of every resample: shape `picks.shape[:-1] + (groups,)`."""
        import numpy as np

        assert self.codes is not None
        n_groups = max(len(self.group_names), 1)
        batch = picks.reshape(-1, picks.shape[-1])
        offsets = (np.arange(batch.shape[0]) * n_groups)[:, None]
        slots = (self.codes[batch] + offsets).ravel()
        size = batch.shape[0] * n_groups
        numerators = np.bincount(slots, weights=self.values[batch].ravel(), minlength=size)
        weights = None if self.denominators is None else self.denominators[batch].ravel()
        denominators = np.bincount(slots, weights=weights, minlength=size).astype(np.float64)
        rates = np.where(
            denominators > 0, numerators / np.where(denominators > 0, denominators, 1), np.nan
        )
        return rates.reshape(*picks.shape[:-1], n_groups)


BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
MAX_RESAMPLE_CELLS = 4_000_000
"""Resampled indexes held in memory at once (32 MB of int64); larger problems go in batches."""
MAX_BCA_INSTANCES = 5_000
"""BCa's jackknife recomputes the statistic n times over n - 1 instances (n² work); above
this many instances the percentile interval is used."""


def bootstrap_interval(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    confidence: float,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, str] | None:
    """A bootstrap interval of a statistic of `n` instances, by resampling instance indexes.

    `statistic(picks)` recomputes the statistic over the instances picked by each row
    of an index array (see `InstanceArrays.statistic`), so any score — a mean, a ratio,
    a max gap over groups — is resampled as itself. scipy's BCa interval is used, and
    its percentile interval where BCa is undefined (e.g. a statistic that barely varies)
    or too costly (more than `MAX_BCA_INSTANCES` instances).

    Returns:
        (low, high, method), or None when the statistic is undefined in the resamples.
    """
    import numpy as np
    from scipy import stats

    def on_indexes(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(np.moveaxis(x, axis, -1).astype(np.int64))

    indexes = (np.arange(n, dtype=np.float64),)
    batch = max(1, MAX_RESAMPLE_CELLS // max(n, 1))
    methods = ("BCa", "percentile") if n <= MAX_BCA_INSTANCES else ("percentile",)
    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate resamples: handled below
            result = stats.bootstrap(
                indexes,
                on_indexes,
                vectorized=True,
                n_resamples=resamples,
                batch=batch,
                confidence_level=confidence,
                method=method,
                rng=np.random.default_rng(seed),
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if np.isfinite(low) and np.isfinite(high):
            return low, high, f"bootstrap {method}, {resamples} resamples"
    return None
