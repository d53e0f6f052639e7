"""Waiting for the limiter is announced, so a run that paces itself to its quota does not look stuck."""

from __future__ import annotations

import pytest

from generation.engine.clock import LoopClock
from generation.engine.limiter import SlidingWindowLimiter
from tests.engine.helpers import RecordingHooks, ScriptedProvider, make_jobs, make_scheduler

pytestmark = pytest.mark.looptime


async def test_a_long_wait_for_the_limiter_is_announced_with_when_the_next_request_goes():
    hooks = RecordingHooks()
    scheduler = make_scheduler(
        ScriptedProvider(latency=1.0), hooks, requests_per_minute=2, start_concurrency=4
    )
    result = await scheduler.run(make_jobs(3))
    assert len(result.succeeded) == 3
    # Two requests go at once; the third must wait for the 60 s window, and that wait is announced.
    (at, seconds, rate), *_ = hooks.of("pacing")
    assert at == pytest.approx(1.0) and seconds == pytest.approx(59.0) and rate == 2


async def test_short_waits_are_not_announced():
    hooks = RecordingHooks()
    await make_scheduler(ScriptedProvider(latency=1.0), hooks, requests_per_minute=600).run(make_jobs(20))
    assert hooks.of("pacing") == []


async def test_the_limiter_tells_when_the_next_request_may_go():
    limiter = SlidingWindowLimiter(LoopClock(), 2)
    assert limiter.next_send_in() == 0.0
    await limiter.acquire()
    await limiter.acquire()
    assert limiter.next_send_in() == pytest.approx(60.0)


async def test_a_quota_pause_is_announced_as_a_quota_wait_not_as_pacing():
    from generation.providers.base import QuotaError

    hooks = RecordingHooks()
    provider = ScriptedProvider({"Scene 1: a lighthouse at dusk": [QuotaError("slow down", retry_after=20)]})
    result = await make_scheduler(provider, hooks).run(make_jobs(2))
    assert len(result.succeeded) == 2
    assert len(hooks.of("quota_wait")) == 1 and hooks.of("pacing") == []
