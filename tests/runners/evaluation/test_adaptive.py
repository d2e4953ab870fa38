"""`concurrency: auto`: the controller in virtual time, its gate, and its settings.

The three server models of issue 15 — k slots and a queue, a rate-limited API, a one-slot
CPU model — are simulated (adaptive_sim), so these checks are exact and take no real
time; test_evaluation_adaptive.py runs the client itself against real servers.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from adaptive_sim import RateLimitedServer, Simulation, SlotServer, best_fixed
from pydantic import ValidationError

from runners.evaluation._adaptive import (
    CEILING_TTL_S,
    MIN_SAMPLES,
    STRAY_SIGNALS,
    AdaptiveController,
    AdaptiveSettings,
    concurrency_plan,
)
from runners.evaluation._gate import InFlightGate
from schemas import DEFAULT_AUTO_CONCURRENCY_MAX, Evaluation, InferenceService

LEVELS = [1, 2, 4, 8, 16, 32, 64, 128]


def _slots(k: int, service_s: float, seed: int = 1) -> SlotServer:
    rng = random.Random(seed)
    # A batch server: each step is a little slower with more requests in it.
    return SlotServer(k, lambda active: service_s * (1 + 0.3 * active / k) * rng.uniform(0.7, 1.3))


def _rate_limited(rate: float, latency_s: float, seed: int = 2) -> RateLimitedServer:
    rng = random.Random(seed)
    return RateLimitedServer(rate, rate * 0.1, lambda: latency_s * rng.uniform(0.5, 1.5))


def test_auto_finds_the_throughput_of_a_server_with_k_slots() -> None:
    def server() -> SlotServer:
        return _slots(16, 0.02)

    best_level, best = best_fixed(server, 12_000, LEVELS)
    result = Simulation(server(), 12_000).run()
    assert result.errors == 0
    assert result.throughput >= 0.9 * best, (result.throughput, best, best_level)
    # It settles near the knee: all slots busy, no needless queue.
    assert result.settled is not None and 16 <= result.settled <= 40


def test_auto_stays_low_against_a_one_slot_model_and_loses_nothing() -> None:
    def server() -> SlotServer:
        rng = random.Random(3)
        return SlotServer(1, lambda active: 0.02 * rng.uniform(0.5, 1.5))

    _, best = best_fixed(server, 1500, LEVELS)
    result = Simulation(server(), 1500).run()
    assert result.throughput >= 0.9 * best
    # More requests in flight only queue at the server: it never goes far above its start.
    assert max(level for _, level in result.levels) <= 8
    assert result.final_level <= 4


def test_auto_keeps_a_rate_limited_api_busy_within_the_error_budget() -> None:
    rate = 200.0

    def server() -> RateLimitedServer:
        return _rate_limited(rate, 0.1)

    simulation = Simulation(server(), 10_000)
    result = simulation.run()
    assert result.errors == 0, "no row may run out of attempts on 429s"
    assert result.throughput >= 0.9 * rate
    assert isinstance(simulation.server, RateLimitedServer)
    assert simulation.server.rejected < 0.05 * result.rows
    # A fixed level high enough for the rate burns the error budget; auto does not.
    flooded = Simulation(server(), 10_000, fixed=128).run()
    assert flooded.errors > 0


def test_auto_respects_its_bounds() -> None:
    settings = AdaptiveSettings(minimum=3, maximum=12, start=5)
    result = Simulation(_slots(64, 0.01), 5000, settings=settings).run()
    assert all(3 <= level <= 12 for _, level in result.levels)
    assert result.final_level == 12  # throughput still rises at the top: it stays there


def test_a_burst_of_429s_is_one_cut_and_stray_ones_are_tolerated() -> None:
    controller = AdaptiveController(AdaptiveSettings(1, 64, 16), now=0.0)
    controller._settle(16, 0.0, announce=False)
    epoch = controller.epoch
    now = 0.0
    for _ in range(2 * MIN_SAMPLES):
        now += 0.01
        controller.answered(epoch, 0.05, now)
    # The first ones are strays: their rows wait and retry, the level stays.
    for _ in range(STRAY_SIGNALS):
        assert not controller.congested(epoch, now, "HTTP 429")
    assert controller.level == 16
    assert controller.congested(epoch, now, "HTTP 429")
    cut = controller.level
    assert 8 <= cut <= 14  # at least 10 %, at most half
    # More 429s of requests sent before the cut change nothing.
    assert not any(controller.congested(epoch, now, "HTTP 429") for _ in range(50))
    assert controller.level == cut


def test_a_probe_that_meets_congestion_goes_back_and_the_ceiling_holds() -> None:
    controller = AdaptiveController(AdaptiveSettings(1, 64, 10), now=0.0)
    controller._settle(10, 0.0, announce=False)
    controller.phase = "probe"
    controller._set(12, 0.0, "probe up")
    assert controller.congested(controller.epoch, 0.01, "HTTP 429")
    assert (controller.level, controller.phase) == (10, "hold")
    # Until the ceiling expires, probes go up only, and stay under 12.
    assert controller._probe_level(1.0) == 11
    assert controller._top(1.0) == 11
    assert controller._top(CEILING_TTL_S + 1.0) == 64
    assert controller._probe_level(CEILING_TTL_S + 1.0) == 12  # 25 % up again


def test_a_frozen_controller_holds_its_level() -> None:
    controller = AdaptiveController(AdaptiveSettings(1, 64, 4), now=0.0)
    controller.freeze(0.0, "the last rows")
    for i in range(100):
        assert not controller.answered(controller.epoch, 0.01, 0.01 * i)
    assert not controller.congested(controller.epoch, 1.0, "HTTP 429")
    assert controller.level == 4


def _evaluation(concurrency: object = None) -> Evaluation:
    spec: dict[str, object] = {"service": "s", "dataset": "d"}
    if concurrency is not None:
        spec["concurrency"] = concurrency
    return Evaluation.model_validate({"kind": "Evaluation", "name": "e", "spec": spec})


def _service(kind: str) -> InferenceService:
    runner = {"kind": kind, "url": "http://x"} if kind == "external" else {"kind": kind}
    return InferenceService.model_validate(
        {
            "kind": "InferenceService",
            "name": "s",
            "spec": {"model": "m", "runner": runner, "interface": {"output": {"y": "string"}}},
        }
    )


def test_auto_is_the_default_for_external_and_vllm_services_only() -> None:
    auto = AdaptiveSettings(1, DEFAULT_AUTO_CONCURRENCY_MAX, 4)
    assert concurrency_plan(_evaluation(), _service("external")) == auto
    assert concurrency_plan(_evaluation(), _service("vllm")) == auto
    assert concurrency_plan(_evaluation(), _service("python")) == 64
    assert concurrency_plan(_evaluation(8), _service("external")) == 8
    assert concurrency_plan(_evaluation("auto"), _service("python")) == auto
    bounded = _evaluation({"min": 2, "max": 40, "start": 30})
    assert concurrency_plan(bounded, _service("python")) == AdaptiveSettings(2, 40, 30)


def test_a_stack_cap_bounds_fixed_and_auto_levels() -> None:
    assert concurrency_plan(_evaluation(64), _service("external"), cap=10) == 10
    assert concurrency_plan(_evaluation(), _service("external"), cap=3) == AdaptiveSettings(1, 3, 3)
    assert concurrency_plan(_evaluation({"min": 8}), _service("vllm"), cap=5) == (
        AdaptiveSettings(5, 5, 5)
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"min": 10, "max": 5}, "max (5) must be >= min (10)"),
        ({"min": 2, "max": 8, "start": 9}, "start (9) must lie within min (2) and max (8)"),
        ({"mx": 5}, "mx: Extra inputs are not permitted"),
        ("fast", "expected a number of requests in flight (1 to 4096), 'auto', or a mapping"),
        (True, "expected a number of requests in flight"),
        (0, "greater than or equal to 1"),
        (5000, "less than or equal to 4096"),
    ],
)
def test_invalid_concurrency_is_refused(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _evaluation(value)


def test_the_gate_admits_at_most_its_limit_and_raises_it_in_steps() -> None:
    async def scenario() -> list[int]:
        gate = InFlightGate(2)
        seen: list[int] = []

        async def request() -> None:
            await gate.acquire()
            seen.append(gate.in_flight)
            await asyncio.sleep(0.005)
            gate.release()

        tasks = [asyncio.create_task(request()) for _ in range(40)]
        await asyncio.sleep(0.02)
        assert max(seen) <= 2
        gate.set_limit(10, over_s=0.05)
        assert gate.limit < 10  # a raise is paced, not a burst
        await asyncio.gather(*tasks)
        assert gate.limit == 10 and gate.in_flight == 0
        gate.set_limit(1)
        assert gate.limit == 1  # a cut applies at once
        return seen

    seen = asyncio.run(scenario())
    assert max(seen) <= 10 and len(seen) == 40


def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    async def scenario() -> None:
        gate = InFlightGate(1)
        await gate.acquire()
        waiter = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        gate.release()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert gate.in_flight == 0
        await asyncio.wait_for(gate.acquire(), 1)

    asyncio.run(scenario())
