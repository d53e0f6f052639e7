"""Quota errors: pauses of the right length, no attempts spent, and the two ways a run ends on quota."""

from __future__ import annotations

import pytest

from generation.engine.jobs import StopReason
from generation.providers.base import QuotaError
from generation.providers.simulated import SimulatedProvider
from tests.engine.helpers import RecordingHooks, ScriptedProvider, make_jobs, make_scheduler, unfinished

pytestmark = pytest.mark.looptime

ONE_AT_A_TIME = {"start_concurrency": 1, "min_concurrency": 1, "max_concurrency": 1}


async def test_a_quota_error_with_retry_after_pauses_dispatch_that_long():
    provider = ScriptedProvider({"Scene 2: a lighthouse at dusk": [QuotaError("429", retry_after=7.0), 1.0]})
    hooks = RecordingHooks()
    result = await make_scheduler(provider, hooks, **ONE_AT_A_TIME).run(make_jobs(3))

    # Scene 2 is sent at t=1 and refused at 1.5; nothing is sent until 8.5, and scene 2 goes first.
    assert hooks.of("quota_wait") == [(7.0, 8.5, 1)]
    assert hooks.starts(2) == [1.0, 8.5]
    assert hooks.starts(3) == [9.5]
    assert result.succeeded == [1, 2, 3]
    assert result.quota_errors == 1
    assert result.quota_wait_seconds == pytest.approx(7.0)


async def test_a_rolling_window_quota_is_learned_from_the_retry_after_of_its_first_429():
    provider = SimulatedProvider(latency=1.0, requests_per_minute=2, rejected_count=True)
    hooks = RecordingHooks()
    result = await make_scheduler(provider, hooks, start_concurrency=3, small_batch=0).run(make_jobs(7))

    # Scene 3 is refused at t=0 with "retry in 60 s", which is what our own send log predicts for R=2;
    # from then on the scheduler sends 2 a minute (once the 0.2 s the refusal took has passed).
    assert result.quota_errors == 1
    assert result.succeeded == [1, 2, 3, 4, 5, 6, 7]
    last_sends = [hooks.starts(key)[-1] for key in (3, 4, 5, 6, 7)]
    assert last_sends == pytest.approx([60.2, 60.2, 120.2, 120.2, 180.2])


# A quota error that says nothing and that no rolling window explains (nothing else was accepted), so
# the scheduler cannot infer the rate and falls back to waiting. Since issue 13 a rolling window's
# silent 429s are inferred instead (test_inference.py); these used SimulatedProvider(rpm=1) before.
UNEXPLAINED = {"Scene 1: a lighthouse at dusk": [QuotaError("429"), QuotaError("429"), QuotaError("429")]}


async def test_a_quota_error_without_retry_after_waits_15s_then_doubles():
    provider = ScriptedProvider(UNEXPLAINED)
    hooks = RecordingHooks()
    result = await make_scheduler(provider, hooks, jitter=0.0, **ONE_AT_A_TIME).run(make_jobs(2))

    assert [(seconds, wait_no) for seconds, _, wait_no in hooks.of("quota_wait")] == [
        (15.0, 1),
        (30.0, 2),
        (60.0, 3),
    ]
    assert result.succeeded == [1, 2]


async def test_the_default_quota_wait_is_jittered_around_15s():
    provider = ScriptedProvider(UNEXPLAINED)
    hooks = RecordingHooks()
    await make_scheduler(provider, hooks, jitter=0.2, **ONE_AT_A_TIME).run(make_jobs(2))

    first_wait = hooks.of("quota_wait")[0][0]
    assert 12.0 <= first_wait <= 18.0


async def test_quota_errors_do_not_spend_a_jobs_attempts():
    # One attempt per job, yet every job gets through the 429s of a one-at-a-time provider.
    provider = SimulatedProvider(latency=2.0, max_concurrent=1, concurrency_retry_after=1.0)
    hooks = RecordingHooks()
    result = await make_scheduler(provider, hooks, max_attempts=1, start_concurrency=3).run(make_jobs(4))

    assert result.succeeded == [1, 2, 3, 4]
    assert result.failed == {}
    assert result.quota_errors >= 2
    assert result.requests == 4 + result.quota_errors


async def test_a_wave_of_429s_from_requests_sent_together_pauses_once():
    provider = SimulatedProvider(latency=5.0, max_concurrent=1, concurrency_retry_after=1.0)
    hooks = RecordingHooks()
    scheduler = make_scheduler(provider, hooks, start_concurrency=5)
    await scheduler.run(make_jobs(5))

    first_wave = [event for event in hooks.of("quota_wait") if event[1] < 2.0]
    assert len(first_wave) == 1
    assert provider.count("concurrency_limited") >= 4


async def test_a_daily_quota_error_ends_the_run_at_once():
    provider = SimulatedProvider(latency=1.0, daily_quota=3)
    hooks = RecordingHooks()
    jobs = make_jobs(8)
    result = await make_scheduler(provider, hooks, start_concurrency=5, small_batch=0).run(jobs)

    assert result.stop_reason == StopReason.DAILY_QUOTA
    assert "daily" in result.stop_message.lower()
    assert hooks.of("quota_wait") == []
    assert result.succeeded == [1, 2, 3]  # in flight when the quota ran out: kept
    assert unfinished(result, jobs) == [4, 5]  # refused: resumable tomorrow
    assert result.not_attempted == [6, 7, 8]
    assert result.elapsed == pytest.approx(1.0)


async def test_quota_waits_past_the_total_budget_end_the_run():
    # Retry-Afters that no rolling window explains (the window would free at 60 s): waited as told.
    scene_2 = [QuotaError("429", retry_after=15.0), QuotaError("429", retry_after=30.0)]
    provider = ScriptedProvider({"Scene 2: a lighthouse at dusk": scene_2})
    hooks = RecordingHooks()
    scheduler = make_scheduler(provider, hooks, jitter=0.0, quota_wait_max_total=40.0, **ONE_AT_A_TIME)
    jobs = make_jobs(3)
    result = await scheduler.run(jobs)

    assert result.stop_reason == StopReason.QUOTA_WAIT_EXCEEDED
    assert "40s" in result.stop_message
    assert [event[0] for event in hooks.of("quota_wait")] == [15.0]  # the 30 s wait would pass 40 s
    assert result.quota_wait_seconds == pytest.approx(15.0)
    assert result.succeeded == [1]
    assert unfinished(result, jobs) == [2]
    assert result.not_attempted == [3]
