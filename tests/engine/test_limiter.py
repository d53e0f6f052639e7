"""Per-credential limiters: a sliding log for rolling windows, a token bucket, pauses, learning."""

from __future__ import annotations

import asyncio

import pytest

from generation.engine.clock import LoopClock
from generation.engine.config import EngineConfig
from generation.engine.limiter import SlidingWindowLimiter, TokenBucketLimiter, make_limiter
from generation.providers.base import RateLimit
from tests.engine.helpers import now

pytestmark = pytest.mark.looptime


async def acquire_times(limiter, count: int) -> list[float]:
    times = []
    for _ in range(count):
        await limiter.acquire()
        times.append(now())
    return times


async def test_the_window_limiter_never_lets_more_than_r_through_in_any_60s():
    limiter = SlidingWindowLimiter(LoopClock(), 5)
    # Several competing acquirers, as when runs share a credential.
    batches = await asyncio.gather(*(acquire_times(limiter, 10) for _ in range(3)))
    times = sorted(t for batch in batches for t in batch)

    assert all(later - earlier >= 60.0 for earlier, later in zip(times, times[5:], strict=False))


async def test_the_window_limiter_runs_at_the_full_quota():
    limiter = SlidingWindowLimiter(LoopClock(), 5)

    assert await acquire_times(limiter, 11) == [0.0] * 5 + [60.0] * 5 + [120.0]


async def test_the_bucket_limiter_paces_at_the_rate():
    limiter = TokenBucketLimiter(LoopClock(), 30, burst=1)

    assert await acquire_times(limiter, 4) == pytest.approx([0.0, 2.0, 4.0, 6.0])


async def test_the_bucket_limiter_allows_its_burst_first():
    limiter = TokenBucketLimiter(LoopClock(), 60, burst=3)

    assert await acquire_times(limiter, 5) == pytest.approx([0.0, 0.0, 0.0, 1.0, 2.0])


async def test_an_unknown_quota_does_not_pace():
    limiter = make_limiter(EngineConfig(), LoopClock())

    assert await acquire_times(limiter, 100) == [0.0] * 100


async def test_pause_until_holds_every_acquire_until_then():
    limiter = make_limiter(EngineConfig(), LoopClock())
    await limiter.pause_until(15.0)
    await limiter.pause_until(10.0)  # never shortens a pause

    assert await acquire_times(limiter, 2) == [15.0, 15.0]


async def test_a_pause_extended_while_waiting_is_honoured():
    limiter = make_limiter(EngineConfig(), LoopClock())
    await limiter.pause_until(10.0)
    waiter = asyncio.create_task(acquire_times(limiter, 1))
    await asyncio.sleep(5.0)
    await limiter.pause_until(25.0)

    assert await waiter == [25.0]


async def test_learn_adopts_the_limit_from_rate_limit_headers():
    limiter = make_limiter(EngineConfig(), LoopClock())
    await limiter.learn(RateLimit(limit_requests=2, remaining_requests=1))

    assert await acquire_times(limiter, 3) == [0.0, 0.0, 60.0]


async def test_acquire_can_be_cancelled_while_paused_and_counts_nothing():
    limiter = SlidingWindowLimiter(LoopClock(), 1)
    await limiter.pause_until(100.0)
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(1.0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert await acquire_times(limiter, 1) == [100.0]  # the cancelled wait took no slot


def test_the_config_picks_the_limiter():
    clock = LoopClock()

    assert isinstance(make_limiter(EngineConfig(requests_per_minute=10), clock), SlidingWindowLimiter)
    assert isinstance(make_limiter(EngineConfig(limiter="bucket", bucket_burst=4), clock), TokenBucketLimiter)
