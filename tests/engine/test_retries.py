"""Transient errors are retried with backoff; terminal ones fail the job at once."""

from __future__ import annotations

import logging

import pytest

from generation.engine.jobs import Job, StopReason
from generation.providers.base import ImageRequest, TransientError
from generation.providers.simulated import SimulatedProvider
from tests.engine.helpers import RecordingHooks, ScriptedProvider, make_jobs, make_scheduler

pytestmark = pytest.mark.looptime


async def test_a_transient_error_then_success_succeeds_on_the_second_attempt():
    provider = ScriptedProvider({"Scene 1: a lighthouse at dusk": [TransientError("500"), 1.0]})
    hooks = RecordingHooks()
    result = await make_scheduler(provider, hooks, jitter=0.0).run(make_jobs(1))

    assert result.succeeded == [1]
    assert result.retries == 1
    assert hooks.starts(1) == [0.0, 2.5]  # failed after 0.5 s, then the 2 s backoff
    assert hooks.of("succeeded") == [(1, 2)]


async def test_three_transient_errors_fail_the_job_after_backoffs_of_about_2s_and_4s(caplog):
    caplog.set_level(logging.INFO, logger="generation.engine")
    provider = SimulatedProvider(latency=1.0, transient_rate=1.0)
    hooks = RecordingHooks()
    result = await make_scheduler(provider, hooks).run(make_jobs(1))

    first, second, third = hooks.starts(1)
    assert 1.0 + 1.6 <= second - first <= 1.0 + 2.4  # 2 s +- 20% jitter after the 1 s request
    assert 1.0 + 3.2 <= third - second <= 1.0 + 4.8
    assert result.failed[1].kind == "transient"
    assert result.failed[1].attempts == 3
    assert hooks.of("failed") == [(1, "transient", 3)]
    assert "Scene 1 attempt 1 failed: 500 Internal server error" in caplog.messages
    assert any(m.startswith("Retrying in ") and m.endswith("ms...") for m in caplog.messages)
    assert "Skipping Scene 1 after 3 failed attempts" in caplog.messages


async def test_a_safety_rejection_fails_the_job_at_once():
    provider = SimulatedProvider(latency=1.0, safety_word="gore")
    jobs = [Job(key=1, request=ImageRequest(prompt="Scene 1: gore everywhere")), *make_jobs(2)[1:]]
    result = await make_scheduler(provider).run(jobs)

    assert result.failed[1].kind == "safety"
    assert result.failed[1].attempts == 1
    assert result.succeeded == [2]


async def test_an_auth_failure_fails_the_job_at_once_and_ends_the_run():
    provider = SimulatedProvider(latency=1.0, auth_failure=True)
    result = await make_scheduler(provider, start_concurrency=1, small_batch=0).run(make_jobs(4))

    assert result.failed[1].kind == "auth"
    assert result.failed[1].attempts == 1
    assert result.stop_reason == StopReason.AUTH
    assert result.not_attempted == [2, 3, 4]
    assert provider.requests == 1


async def test_a_request_without_an_answer_times_out_as_a_transient_error():
    provider = SimulatedProvider(hang_rate=1.0)
    hooks = RecordingHooks()
    result = await make_scheduler(provider, hooks, request_timeout=5.0, max_attempts=2, jitter=0.0).run(
        make_jobs(1)
    )

    assert hooks.starts(1) == [0.0, 7.0]
    assert result.failed[1].reason == "No answer after 5s"
    assert result.elapsed == pytest.approx(12.0)


async def test_an_untyped_provider_error_is_retried_as_transient():
    provider = ScriptedProvider({"Scene 1: a lighthouse at dusk": [ValueError("bad json"), 1.0]})
    result = await make_scheduler(provider, jitter=0.0).run(make_jobs(1))

    assert result.succeeded == [1]
    assert result.retries == 1


async def test_a_failing_event_hook_does_not_stop_the_run():
    # An event hook (progress) may fail and the run goes on. Until issue 12 this hook was
    # job_succeeded; a store failure now fails its job instead (test_durability.py).
    class BrokenHooks(RecordingHooks):
        async def progress(self, snapshot):
            raise RuntimeError("the channel layer is down")

    result = await make_scheduler(SimulatedProvider(latency=1.0), BrokenHooks()).run(make_jobs(3))

    assert result.succeeded == [1, 2, 3]
