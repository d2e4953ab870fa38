"""Adaptive concurrency (`concurrency: auto`): how many requests to keep in flight.

Stage: runner (the evaluation client). `AdaptiveController` is pure: the client tells it
how each request ended (`answered`, or `congested` for a 429/503/timeout) with the epoch
the request was sent in, and it answers whether the level changed. The client applies
the level with an `InFlightGate` (`_gate.py`). docs/runners.md describes the algorithm
for users; in short:

1. **Ramp.** Start at `start` and double the level after each measurement window while
   throughput grows by at least `RAMP_GAIN` per doubling.
2. **Refine.** Once a doubling no longer pays, bisect (geometrically) between the highest
   level still short of the best throughput seen and the lowest level within `TOLERANCE`
   of it; settle on the latter: the least concurrency that gets (nearly) all of it.
3. **Hold and probe.** Hold the level; after `HOLD_START` windows try one window 25 %
   above or below. Up is kept when throughput rises by more than `TOLERANCE` (and starts a
   new ramp), down when throughput stays within `TOLERANCE` of the held level's (less
   latency for the same work). A probe that changes nothing doubles the hold (up to
   `HOLD_MAX` windows), so a settled level is left alone more and more.
4. **Congestion** (HTTP 429 or 503, or a request timeout, of a request sent at the current
   level, once that level's first answer is back) cuts at once when it is more than a
   stray (`STRAY_SIGNALS` plus `CONGESTION_TOLERANCE` of the level's answers): to the
   concurrency the answers sustained (Little's law: throughput × latency), else to the
   last level that saw none, by at least `CUT_MIN` and at most half. The level that met
   congestion becomes a ceiling for `CEILING_TTL_S`: below it probes only go up, halfway
   to it, and are kept when they cost no throughput. Signals of requests sent before a
   change are ignored, so one burst is one cut; a probe up that meets congestion just
   goes back.

A window measures one level: it starts when the first answer to a request sent at that
level arrives (the pipeline has refilled by then) and ends once it holds `MIN_SAMPLES`
answers, `WINDOW_LATENCIES` mean latencies and `MIN_WINDOW_S`, and the latency's
relative standard error is under `TARGET_SE` (`TARGET_SE_RAMP` while ramping), or it has
lasted `MAX_WINDOW_S`. Throughput is answers per second in the window; latency is the
mean of the answers to requests sent at the level. Raises are paced over one latency
(`increase_over_s`) so that a new level is not a burst a rate limiter would refuse.
"""

from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass
from typing import Literal

from schemas import (
    DEFAULT_AUTO_CONCURRENCY_START,
    DEFAULT_CONCURRENCY,
    AdaptiveConcurrency,
    Evaluation,
    InferenceService,
)

__all__ = [
    "AUTO_RUNNERS",
    "CEILING_TTL_S",
    "CONGESTION_TOLERANCE",
    "CUT_MIN",
    "HOLD_MAX",
    "HOLD_START",
    "MAX_PACING_S",
    "MAX_WINDOW_S",
    "MIN_SAMPLES",
    "MIN_WINDOW_S",
    "PROBE_STEP",
    "RAMP_GAIN",
    "REFINE_RATIO",
    "STRAY_SIGNALS",
    "TARGET_SE",
    "TARGET_SE_RAMP",
    "TOLERANCE",
    "WINDOW_LATENCIES",
    "AdaptiveController",
    "AdaptiveSettings",
    "LevelChange",
    "concurrency_plan",
]

logger = logging.getLogger("runners.evaluation")

RAMP_GAIN = 1.25
"""A doubling must raise throughput by 25 % for the ramp to go on (free slots give 100 %)."""
CONGESTION_TOLERANCE = 0.01
"""Congestion signals up to 1 % of the level's answers (plus `STRAY_SIGNALS`) are tolerated."""
STRAY_SIGNALS = 2
"""A level tolerates this many congestion signals before any answer: a limit met exactly
refuses a request now and then, and its row is simply sent again."""
CUT_MIN = 0.1
"""A congestion cut takes away at least 10 % of the requests in flight (and at most half)."""
TOLERANCE = 0.03
"""Throughput within 3 % of the best counts as the best (measurements are about that noisy)."""
REFINE_RATIO = 1.2
"""The bisection stops when its bracket is narrower than 20 %."""
PROBE_STEP = 1.25
"""A probe tries 25 % more or fewer requests in flight (at least one)."""
HOLD_START = 4
"""Windows held at a settled level before the first probe."""
HOLD_MAX = 32
"""Most windows between probes."""
CEILING_TTL_S = 60.0
"""Seconds a level that met congestion stays out of reach of probes and ramps."""
MIN_SAMPLES = 8
"""Answers a window needs at least."""
MIN_WINDOW_S = 0.2
"""Seconds a window lasts at least."""
WINDOW_LATENCIES = 2.0
"""A window lasts at least this many mean latencies."""
TARGET_SE = 0.02
"""A window ends early once the relative standard error of its mean latency is this small…"""
TARGET_SE_RAMP = 0.1
"""…or this small while ramping (a doubling that pays shows a gain far above the noise)…"""
MAX_WINDOW_S = 20.0
"""…or once it has lasted this long (and its minimums are met)."""
MAX_PACING_S = 2.0
"""A raise of the level is spread over the mean latency, but never over longer than this."""

Phase = Literal["ramp", "refine", "hold", "probe", "frozen"]


@dataclass(frozen=True)
class AdaptiveSettings:
    """Bounds of the controller (per shard)."""

    minimum: int
    maximum: int
    start: int

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.start <= self.maximum:
            raise ValueError(
                f"need 1 <= min <= start <= max, got {self.minimum}, {self.start}, {self.maximum}"
            )


@dataclass(frozen=True)
class LevelChange:
    """One change of level: when (seconds since the start), to what, and why."""

    at_s: float
    level: int
    reason: str


@dataclass
class _Window:
    """Measurements at one level (running sums: a window may see many thousand answers)."""

    opened: float
    measure_from: float | None = None
    answers: int = 0
    """Answers (any status but a congestion one) since `measure_from`."""
    signals: int = 0
    """Congestion signals of requests sent at the level, since `measure_from`."""
    latency_n: int = 0
    latency_sum: float = 0.0
    latency_squares: float = 0.0
    """Count, sum and sum of squares of the latencies of answers to requests sent at the level."""

    def add_latency(self, latency: float) -> None:
        self.latency_n += 1
        self.latency_sum += latency
        self.latency_squares += latency * latency

    def throughput(self, now: float) -> float:
        """Answers per second since `measure_from`."""
        assert self.measure_from is not None
        return self.answers / max(now - self.measure_from, 1e-9)

    def mean_latency(self) -> float | None:
        return self.latency_sum / self.latency_n if self.latency_n else None

    def relative_se(self) -> float:
        n = self.latency_n
        if n < 2:
            return math.inf
        mean = self.latency_sum / n
        variance = max(self.latency_squares - n * mean * mean, 0.0) / (n - 1)
        return math.sqrt(variance / n) / mean if mean > 0 else 0.0


class AdaptiveController:
    """Decides how many requests to keep in flight; see the module docstring.

    Example:
        >>> c = AdaptiveController(AdaptiveSettings(minimum=1, maximum=64, start=4), now=0.0)
        >>> epoch = c.epoch                     # tag a request with it when sending
        >>> c.answered(epoch, latency=0.05, now=0.05)  # True when `c.level` changed
        False
    """

    def __init__(self, settings: AdaptiveSettings, now: float) -> None:
        self.settings = settings
        self.level = settings.start
        self.epoch = 0
        self.phase: Phase = "ramp"
        self.history: list[LevelChange] = []
        self.settled: int | None = None
        """The level the controller last settled on (None while it is still ramping)."""
        self._t0 = now
        self._window = _Window(opened=now)
        self._measured: dict[int, float] = {}
        """Throughput per level in this ramp episode."""
        self._ramp_previous: float | None = None
        self._held: list[float] = []
        """Throughput of the last windows at the held level."""
        self._hold = HOLD_START
        self._windows_left = HOLD_START
        self._probe_up = True
        self._base = settings.start
        self._ceiling: int | None = None
        self._ceiling_until = 0.0
        self._last_clean: int | None = None
        self._latency = 0.0
        """Mean latency of the last window."""
        self._answers = 0
        self._signals = 0
        """Answers and congestion signals of requests sent at the current level."""

    # ------------------------------------------------------------ observations

    def answered(self, epoch: int, latency: float, now: float) -> bool:
        """An answer arrived (any status but a congestion one) for a request sent in `epoch`.

        Returns:
            True when it completed a window and the level changed.
        """
        window = self._window
        if epoch == self.epoch:
            self._answers += 1
        if window.measure_from is None:
            if epoch == self.epoch:
                window.measure_from = now  # the pipeline holds this level's requests now
                window.add_latency(latency)
            return False
        window.answers += 1
        if epoch == self.epoch:
            window.add_latency(latency)
        return window.answers >= MIN_SAMPLES and self.update(now)

    def congested(self, epoch: int, now: float, what: str) -> bool:
        """A 429/503 or a timeout of a request sent in `epoch`; True when the level changed."""
        if epoch != self.epoch or self.phase == "frozen":
            return False  # one cut per level: later signals of the same burst are old news
        window = self._window
        probing_up = self.phase == "probe" and self.level > self._base
        if not probing_up:
            if window.measure_from is None:
                return (
                    False  # the level's first answer is not back: what was sent before it did this
                )
            window.signals += 1
            self._signals += 1
            if self._signals <= CONGESTION_TOLERANCE * self._answers + STRAY_SIGNALS:
                return False  # a stray one: its row waits and retries; the level stays
        level = self.level
        if self._ceiling is None or now >= self._ceiling_until or level < self._ceiling:
            self._ceiling = level
        self._ceiling_until = now + CEILING_TTL_S
        if probing_up:
            # The held level below was clean: go back to it, and soon try halfway to the
            # new ceiling instead.
            logger.info(
                "concurrency: %s at %d requests in flight: back to %d", what, level, self._base
            )
            self.phase = "hold"
            self._windows_left = 1
            self._set(self._base, now, f"{what}: back")
            return True
        target = self._congestion_target(now)
        if target >= level:
            return False  # at `min`: nothing to cut
        logger.info("concurrency: %s at %d requests in flight: down to %d", what, level, target)
        self._set(target, now, what)
        self._settle(target, now, announce=False)
        self._windows_left = 1  # then close in on the ceiling from below
        return True

    @property
    def increase_over_s(self) -> float:
        """Spread a raise of the level over this many seconds (the last mean latency).

        Sending the new requests all at once would be a burst that a rate limiter's bucket
        may refuse even when the new level's steady rate is within the limit.
        """
        return min(self._latency, MAX_PACING_S)

    def freeze(self, now: float, reason: str) -> None:
        """Stop adapting (the data ran out: the tail of a run says nothing about the server)."""
        if self.phase != "frozen":
            self.phase = "frozen"
            logger.debug("concurrency: holding %d from now on (%s)", self.level, reason)

    # ------------------------------------------------------------ decisions

    def update(self, now: float) -> bool:
        """Close the window when it has measured enough and decide; True when the level changed."""
        if self.phase == "frozen":
            return False
        window = self._window
        if window.measure_from is None or not self._window_done(window, now):
            return False
        throughput = window.throughput(now)
        self._last_clean = self.level
        self._latency = window.mean_latency() or 0.0
        logger.debug(
            "concurrency: %s window at %d: %.1f answers/s, mean latency %.3f s (%d answers)",
            self.phase,
            self.level,
            throughput,
            self._latency,
            window.answers,
        )
        before = self.level
        if self.phase == "ramp":
            self._after_ramp_window(throughput, now)
        elif self.phase == "refine":
            self._measured[self.level] = throughput
            self._refine(now)
        elif self.phase == "hold":
            self._after_hold_window(throughput, now)
        else:
            self._after_probe_window(throughput, now)
        if self.level == before:
            self._window = _Window(opened=now, measure_from=now)  # same level, same epoch
        return self.level != before

    def _window_done(self, window: _Window, now: float) -> bool:
        assert window.measure_from is not None
        elapsed = now - window.measure_from
        latency = window.mean_latency() or elapsed
        if window.answers < MIN_SAMPLES:
            return False
        if elapsed < max(MIN_WINDOW_S, WINDOW_LATENCIES * latency):
            return False
        target = TARGET_SE_RAMP if self.phase == "ramp" else TARGET_SE
        return window.relative_se() <= target or elapsed >= MAX_WINDOW_S

    def _after_ramp_window(self, throughput: float, now: float) -> None:
        self._measured[self.level] = throughput
        previous, self._ramp_previous = self._ramp_previous, throughput
        top = self._top(now)
        if (previous is None or throughput >= previous * RAMP_GAIN) and self.level < top:
            self._set(min(self.level * 2, top), now, "ramp: throughput still rising")
            return
        self.phase = "refine"
        self._refine(now)

    def _refine(self, now: float) -> None:
        measured = self._measured
        best = max(measured.values())
        high = min(level for level, x in measured.items() if x >= (1 - TOLERANCE) * best)
        below = [level for level in measured if level < high]
        low = max(below) if below else None
        if low is None or high <= low * REFINE_RATIO or high - low <= 1:
            self._settle(high, now, announce=True)
            return
        middle = min(max(round(math.sqrt(low * high)), low + 1), high - 1)
        self._set(middle, now, "refine: bisecting for the least level at full throughput")

    def _after_hold_window(self, throughput: float, now: float) -> None:
        self._held = [*self._held[-2:], throughput]
        self._windows_left -= 1
        if self._windows_left > 0:
            return
        probe = self._probe_level(now)
        if probe is None:
            self._windows_left = self._hold
            return
        self.phase = "probe"
        self._set(probe, now, "probe " + ("up" if probe > self._base else "down"))

    def _probe_level(self, now: float) -> int | None:
        """The next probe: up or down, alternating after probes that did not pay.

        Below a level that met congestion (a rate limit's regime, where throughput follows
        the level) probes only go up, halfway to that ceiling.
        """
        base = self._base
        if self._ceiling is not None and self._ceiling_active(now):
            up = min((base + self._ceiling) // 2, self._top(now))
            return up if up > base else None
        up = min(max(base + 1, round(base * PROBE_STEP)), self._top(now))
        down = max(min(base - 1, round(base / PROBE_STEP)), self.settings.minimum)
        choices = [level for level in (up, down) if level != base]
        if not self._probe_up:
            choices.reverse()
        if not choices:
            return None
        self._probe_up = choices[0] > base
        return choices[0]

    def _after_probe_window(self, throughput: float, now: float) -> None:
        reference = statistics.median(self._held) if self._held else throughput
        level, base = self.level, self._base
        if level > base and self._ceiling_active(now) and throughput >= reference * (1 - TOLERANCE):
            # Below a level that met congestion more requests in flight are worth keeping as
            # long as they cost no throughput and meet no congestion (a rate limit's regime).
            self._settle(level, now, announce=True, keep_direction=True)
            self._held = [throughput]
            return
        if level > base and throughput > reference * (1 + TOLERANCE):
            if level >= self._top(now):
                self._settle(level, now, announce=True, keep_direction=True)
                self._held = [throughput]
                return
            # More capacity than measured before: ramp again from here.
            self._measured = {base: reference, level: throughput}
            self._ramp_previous = throughput
            self.phase = "ramp"
            self._set(min(level * 2, self._top(now)), now, "probe up paid: ramp again")
            return
        if level < base and throughput >= reference * (1 - TOLERANCE):
            self._settle(level, now, announce=False, keep_direction=True)
            self._held = [throughput]
            return
        self._probe_failed(now, "probe did not pay")

    def _probe_failed(self, now: float, why: str) -> None:
        """Back to the held level; wait twice as long before the next probe, the other way."""
        self._hold = min(self._hold * 2, HOLD_MAX)
        self._probe_up = not self._probe_up
        self.phase = "hold"
        self._windows_left = self._hold
        self._set(self._base, now, f"{why}: back")

    # ------------------------------------------------------------ helpers

    def _ceiling_active(self, now: float) -> bool:
        return self._ceiling is not None and now < self._ceiling_until

    def _top(self, now: float) -> int:
        """The highest level a ramp or probe may reach now."""
        top = self.settings.maximum
        if self._ceiling is not None and self._ceiling_active(now):
            top = min(top, max(self._ceiling - 1, self.settings.minimum))
        return top

    def _congestion_target(self, now: float) -> int:
        """Where a congestion signal cuts to: what the answers sustained, else the last clean
        level; by at least `CUT_MIN` and at most half."""
        level, window = self.level, self._window
        latency = window.mean_latency()
        if window.signals >= max(window.answers, MIN_SAMPLES):
            target = level // 2  # more refused than answered: far over the limit
        elif window.measure_from is not None and window.answers >= MIN_SAMPLES and latency:
            # Little's law: the requests in flight that this throughput at this latency needs.
            target = math.floor(window.throughput(now) * latency)
        elif self._last_clean is not None and self._last_clean < level:
            target = self._last_clean
        else:
            target = level - 1
        target = min(target, math.floor(level * (1 - CUT_MIN)), level - 1)
        return max(target, level // 2, self.settings.minimum)

    def _settle(
        self, level: int, now: float, *, announce: bool, keep_direction: bool = False
    ) -> None:
        if level != self.level:
            self._set(level, now, "settle")
        self.phase = "hold"
        self._base = level
        self._held = []
        self._windows_left = self._hold = HOLD_START
        if not keep_direction:
            self._probe_up = True
        if announce and level != self.settled:
            logger.info("concurrency: auto settled at %d requests in flight", level)
        self.settled = level

    def _set(self, level: int, now: float, reason: str) -> None:
        level = max(self.settings.minimum, min(level, self.settings.maximum))
        if level == self.level:
            return
        logger.debug("concurrency: %d -> %d (%s)", self.level, level, reason)
        self.level = level
        self.epoch += 1
        self._answers = self._signals = 0
        self._window = _Window(opened=now)
        self.history.append(LevelChange(round(now - self._t0, 3), level, reason))


AUTO_RUNNERS = ("external", "vllm")
"""Runner kinds whose services get `concurrency: auto` when the Evaluation sets none."""


def concurrency_plan(
    evaluation: Evaluation, service: InferenceService, cap: int | None = None
) -> int | AdaptiveSettings:
    """The fixed level, or the bounds of `auto`, for one shard of `evaluation`.

    Args:
        evaluation: Its `spec.concurrency` (a number, `auto`, `{min, max, start}` or unset).
        service: Unset means `auto` for `external` and `vllm` runners, else `DEFAULT_CONCURRENCY`.
        cap: The most requests in flight this shard may have (a stack's share), if any.
    """
    value = evaluation.spec.concurrency
    if value is None:
        value = "auto" if service.spec.runner.kind in AUTO_RUNNERS else DEFAULT_CONCURRENCY
    if isinstance(value, int):
        return min(value, cap) if cap is not None else value
    bounds = AdaptiveConcurrency() if value == "auto" else value
    maximum = min(bounds.max, cap) if cap is not None else bounds.max
    minimum = min(bounds.min, maximum)
    start = min(max(bounds.start or DEFAULT_AUTO_CONCURRENCY_START, minimum), maximum)
    return AdaptiveSettings(minimum=minimum, maximum=maximum, start=start)
