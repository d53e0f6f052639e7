"""Executes a batch-mode run: submit its scenes as one provider batch (half price, within 24 h), store
the batch's id before polling, poll it while holding the run's lease, and record each result as it is
read. A worker that takes the run over finds the stored id and polls the same batch: nothing is
submitted, or billed, twice. A stop cancels the provider batch and keeps what it had completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from generation.batches.clients import batch_client_for
from generation.batches.models import ProviderBatch
from generation.batches.openai import BatchState
from generation.checked import image_checked
from generation.engine.jobs import Counters, Failure, Job, RunResult, StopReason
from generation.providers.base import ImageResult, ProviderError, TransientError
from generation.runs.execution import RunExecution
from generation.runs.selectors import run_payload
from generation.runs.targets import Plan
from ops.logs import bind_log_context

logger = logging.getLogger("generation.batches")


def custom_id(key: object) -> str:
    return f"item-{key}"


async def _checked(
    image: ImageResult | None, error: ProviderError | None
) -> tuple[ImageResult | None, ProviderError | None]:
    """A batch item's image, typed by its content, or why it cannot be stored: as for a request's answer."""
    if image is None:
        return None, error
    try:
        return await image_checked(image, decoded=False), None
    except TransientError as broken:
        return None, broken


class BatchExecution(RunExecution):
    """RunExecution's claim, lease, recorder and finish, with a provider batch instead of the scheduler."""

    def __init__(self, run, *, provider, **kwargs) -> None:
        super().__init__(run, provider=provider, **kwargs)
        self.meter.batch = True  # every image at the batch price
        self.client = batch_client_for(provider)

    async def execute(self):
        bind_log_context(run_id=self.run.pk, project_id=self.run.project_id)
        self._loop = asyncio.get_running_loop()
        plan = await database_sync_to_async(self._prepare)()
        await self.recorder.publish("run.started", **run_payload(self.run))
        for key, reason in plan.skips:
            await self.recorder.skipped(key, reason)
        if self.run.stop_requested:
            self.stop_seen.set()
        watcher = asyncio.create_task(self._watch())
        self._scheduling = asyncio.ensure_future(self._run_batch(plan))
        try:
            result = await self._scheduling
        except asyncio.CancelledError:
            if self.lost is None:
                raise
            return self.run
        finally:
            watcher.cancel()
        if await database_sync_to_async(self._finish)(result):
            await self.publish_outcome()
        return self.run

    async def _run_batch(self, plan: Plan) -> RunResult:
        jobs = {custom_id(job.key): job for job in plan.jobs}
        result = RunResult(counters=Counters())
        if self.client is None:
            for job in plan.jobs:
                result.not_attempted.append(job.key)
            result.stop_reason, result.stop_message = (
                StopReason.ERROR,
                f"{self.provider.name} has no batch API",
            )
            return result
        if not jobs:
            return result
        batch = await database_sync_to_async(self._batch_row)(jobs)
        if not batch.provider_id:
            batch.provider_id = await self.client.submit([(cid, job.request) for cid, job in jobs.items()])
            await database_sync_to_async(self._save_batch)(batch, ProviderBatch.State.POLLING)
            logger.info("Run %s: submitted %d item(s) as batch %s", self.run.pk, len(jobs), batch.provider_id)
        state, cancelled = await self._poll(batch)
        await self._record(state, jobs, result)
        await database_sync_to_async(self._save_batch)(batch, ProviderBatch.State.DONE, state.status)
        if cancelled:
            result.stop_reason, result.stop_message = (
                StopReason.STOPPED,
                "Stopped on request (batch cancelled)",
            )
        return result

    async def _poll(self, batch: ProviderBatch) -> tuple[BatchState, bool]:
        cancelled = False
        poll_seconds = float(getattr(settings, "GENERATION_BATCH_POLL_SECONDS", 30.0))
        while True:
            if self.stop_seen.is_set() and not cancelled:
                await self.client.cancel(batch.provider_id)
                cancelled = True
            state = await self.client.poll(batch.provider_id)
            if state.done:
                return state, cancelled
            if state.status != batch.provider_status:
                await database_sync_to_async(self._save_batch)(batch, batch.state, state.status)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_seconds):
                    await self.stop_seen.wait()

    async def _record(self, state: BatchState, jobs: dict[str, Job], result: RunResult) -> None:
        """Each outcome as it is read; items already recorded before a takeover are not in `jobs`."""
        seen: set[str] = set()
        for outcome in state.outcomes:
            job = jobs.get(outcome.custom_id)
            if job is None or outcome.custom_id in seen:
                continue
            seen.add(outcome.custom_id)
            result.counters.requests += 1
            image, error = await _checked(outcome.result, outcome.error)
            await self.recorder.attempt_started(job, 1)
            await self.recorder.attempt_finished(job, 1, error, image, 0.0)
            if image is not None:
                await self.recorder.job_succeeded(job, image, 1)
                result.succeeded.append(job.key)
            else:
                await self._failed(job, error or TransientError("No result"), result)
        for cid, job in jobs.items():
            if cid not in seen:
                await self._failed(job, TransientError(f"The batch {state.status} without this item"), result)

    async def _failed(self, job: Job, error: ProviderError, result: RunResult) -> None:
        await self.recorder.job_failed(job, error, 1)
        result.failed[job.key] = Failure(kind=error.kind, reason=error.message, attempts=1)

    def _batch_row(self, jobs: dict[str, Job]) -> ProviderBatch:
        """The run's unfinished batch (a takeover resumes it), else a new row, written before submitting."""
        batch = self.run.provider_batches.exclude(state=ProviderBatch.State.DONE).first()
        if batch is None:
            items = {cid: job.key for cid, job in jobs.items()}
            batch = ProviderBatch.objects.create(run=self.run, items=items)
        return batch

    def _save_batch(self, batch: ProviderBatch, state: str, provider_status: str = "") -> None:
        batch.state = state
        batch.provider_status = provider_status or batch.provider_status
        ProviderBatch.objects.filter(pk=batch.pk).update(
            provider_id=batch.provider_id, state=batch.state, provider_status=batch.provider_status
        )
