"""Adaptive concurrency: slow start, multiplicative decrease, additive increase, probe backoff."""

from __future__ import annotations

import pytest

from generation.engine.concurrency import AdaptiveConcurrency
from generation.providers.simulated import SimulatedProvider
from tests.engine.helpers import make_jobs, make_scheduler

pytestmark = pytest.mark.looptime


def controller(start: int = 5, minimum: int = 1, maximum: int = 16) -> AdaptiveConcurrency:
    return AdaptiveConcurrency(start=start, minimum=minimum, maximum=maximum)


def test_slow_start_adds_one_per_success_up_to_the_maximum():
    concurrency = controller(start=5, maximum=8)
    for _ in range(10):
        concurrency.on_success()

    assert concurrency.limit == 8


def test_a_quota_error_ends_slow_start_and_cuts_the_limit():
    concurrency = controller(start=10)
    concurrency.on_quota_error(level=10)

    assert not concurrency.slow_start
    assert concurrency.limit == 7


def test_after_slow_start_it_grows_by_about_one_per_round():
    concurrency = controller(start=10)
    concurrency.on_quota_error(level=10)  # 7, and level 10 failed
    for _ in range(8):  # a round of 7, a little more as the window grows within it
        concurrency.on_success()

    assert concurrency.limit == 8


def test_it_never_goes_below_the_minimum():
    concurrency = controller(start=2, minimum=2)
    for _ in range(5):
        concurrency.on_quota_error(level=2)

    assert concurrency.limit == 2


def test_a_level_that_failed_is_probed_again_after_a_streak_that_doubles_each_time():
    concurrency = controller(start=4)
    concurrency.on_quota_error(level=4)  # a cap of 3: limit 2, probe 4 again after 8 successes

    successes_before_probe = []
    for _ in range(3):
        count = 0
        while concurrency.limit < 4:
            concurrency.on_success()
            count += 1
        successes_before_probe.append(count)
        concurrency.on_quota_error(level=4)

    assert successes_before_probe[1] > successes_before_probe[0]
    assert successes_before_probe[2] >= 2 * successes_before_probe[1] - 2


async def test_the_scheduler_lowers_concurrency_after_429s():
    provider = SimulatedProvider(latency=5.0, max_concurrent=2)
    scheduler = make_scheduler(provider, start_concurrency=6)
    await scheduler.run(make_jobs(12))

    assert scheduler.concurrency.limit <= 3


async def test_a_provider_allowing_three_concurrent_requests_sees_few_429s():
    provider = SimulatedProvider(latency=8.0, latency_sigma=0.5, max_concurrent=3, seed=5)
    result = await make_scheduler(provider).run(make_jobs(200))

    after_first_minute = [r for r in provider.records if r.at >= 60.0]
    rejected = sum(1 for r in after_first_minute if r.outcome == "concurrency_limited")
    assert rejected / len(after_first_minute) < 0.05
    assert len(result.succeeded) == 200
