"""The durability contract of hooks.py (issue 12): nothing is sent unrecorded or counted unstored."""

from __future__ import annotations

import pytest

from generation.engine.hooks import StoreError
from generation.engine.jobs import StopReason
from generation.providers.simulated import SimulatedProvider
from tests.engine.helpers import RecordingHooks, ScriptedProvider, make_jobs, make_scheduler

pytestmark = pytest.mark.looptime


class FailingStarts(RecordingHooks):
    """attempt_started raises for the first `failures` calls of scene 1."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def attempt_started(self, job, attempt_no):
        if job.key == 1 and self.failures:
            self.failures -= 1
            raise ConnectionError("database is gone")
        await super().attempt_started(job, attempt_no)


async def test_no_request_is_sent_when_its_attempt_cannot_be_recorded():
    provider = ScriptedProvider()
    hooks = FailingStarts(failures=3)
    result = await make_scheduler(provider, hooks, jitter=0.0).run(make_jobs(2))

    assert [prompt for prompt, _ in provider.sent] == ["Scene 2: a lighthouse at dusk"]
    assert result.failed[1].kind == "storage"
    assert result.failed[1].reason == "could not record the attempt: database is gone"
    assert hooks.of("failed") == [(1, "storage", 0)]
    assert result.succeeded == [2]
    assert result.requests == 1


async def test_a_failed_attempt_record_is_retried_like_a_transient_error():
    provider = ScriptedProvider()
    hooks = FailingStarts(failures=1)
    result = await make_scheduler(provider, hooks, jitter=0.0).run(make_jobs(1))

    assert result.succeeded == [1]
    assert hooks.starts(1) == [2.0]  # the 2 s backoff, then the one request
    assert len(provider.sent) == 1


async def test_a_job_whose_image_cannot_be_stored_fails_with_the_reason():
    class FailingStore(RecordingHooks):
        async def job_succeeded(self, job, result, attempts):
            if job.key == 2:
                raise OSError("No space left on device")
            await super().job_succeeded(job, result, attempts)

    hooks = FailingStore()
    result = await make_scheduler(SimulatedProvider(latency=1.0), hooks).run(make_jobs(3))

    assert result.succeeded == [1, 3]
    assert result.failed[2].kind == "storage"
    assert result.failed[2].reason == "could not store the image: No space left on device"
    assert (2, "storage", 1) in hooks.of("failed")
    assert result.counters.succeeded == 2 and result.counters.failed == 1


async def test_a_fatal_store_error_stops_the_run_at_once():
    class FullDisk(RecordingHooks):
        async def job_succeeded(self, job, result, attempts):
            raise StoreError("disk full", fatal=True)

    provider = SimulatedProvider(latency=10.0)
    hooks = FullDisk()
    scheduler = make_scheduler(provider, hooks, start_concurrency=2, max_concurrency=2, small_batch=0)
    result = await scheduler.run(make_jobs(10))

    assert result.stop_reason == StopReason.STORAGE
    assert "disk full" in result.stop_message
    assert result.succeeded == []
    assert provider.requests == 2  # the two in flight when the disk filled; nothing after
    assert result.not_attempted == [3, 4, 5, 6, 7, 8, 9, 10]


async def test_a_fatal_store_error_recording_an_attempt_stops_the_run():
    class ReadOnly(RecordingHooks):
        async def attempt_started(self, job, attempt_no):
            raise StoreError("read-only file system", fatal=True)

    provider = SimulatedProvider(latency=1.0)
    result = await make_scheduler(provider, ReadOnly(), start_concurrency=1, small_batch=0).run(make_jobs(4))

    assert result.stop_reason == StopReason.STORAGE
    assert provider.requests == 0


async def test_the_first_auth_error_stops_dispatch_before_anything_else_is_awaited():
    class SlowRecords(RecordingHooks):
        async def attempt_finished(self, job, attempt_no, error, result, latency):
            # A slow database write for the refused request: nothing may be sent meanwhile.
            import asyncio

            await asyncio.sleep(5.0)

    provider = SimulatedProvider(latency=1.0, auth_failure=True, reject_latency=0.1)
    result = await make_scheduler(provider, SlowRecords(), start_concurrency=1, small_batch=0).run(
        make_jobs(30)
    )

    assert result.stop_reason == StopReason.AUTH
    assert provider.requests == 1
