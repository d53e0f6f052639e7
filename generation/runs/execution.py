"""Executes one BatchRun in this process: claim it, plan its jobs, run the Django-free scheduler with the
recorder as its hooks, watch the lease and the stop flag, and record the outcome.

Several workers may run: the one named in BatchRun.owner holds the run (a lease renewed by its heartbeat).
Every write a worker makes for a run is fenced on still holding it, so a worker that lost the run to
another (its lease lapsed while it was stalled or cut off) writes nothing more, and stops at once.
`run_execute` is the one way in, for the worker, `manage.py generate`, tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from channels.db import database_sync_to_async
from django.db import transaction
from django.utils import timezone

from generation.checked import ImagesChecked
from generation.costs.daily import daily_reset_at, parked_message
from generation.costs.meter import BudgetGuard, CostMeter
from generation.costs.profiles import profile_for, profile_record
from generation.credentials.vault import KeyUnreadable
from generation.engine.clock import Clock, LoopClock
from generation.engine.config import EngineConfig
from generation.engine.jobs import Counters, Job, RunResult, StopReason
from generation.engine.limiter import Limiter
from generation.engine.profile import CredentialProfile
from generation.engine.scheduler import Scheduler
from generation.live.events import wake_worker
from generation.models import BatchRun, GenerationAttempt
from generation.providers.base import ImageRequest, InvalidRequestError, Provider
from generation.quota.registry import limiter_for
from generation.runs.media import orphan_media_delete
from generation.runs.providers import project_provider
from generation.runs.recorder import RunRecorder
from generation.runs.selectors import run_payload
from generation.runs.services import (
    LEASE_SECONDS,
    attempt_counters,
    run_beat,
    run_claim,
    run_fail,
    run_hand_back,
    run_release_scenes,
)
from generation.runs.targets import Plan, target_for
from ops.logs import bind_log_context
from webhooks.services import webhook_run_finished


class Blocked(InvalidRequestError):
    """An item the run will not send (see Plan.blocked)."""

    kind = "blocked"


logger = logging.getLogger("generation.runner")

STOP_POLL_SECONDS = 0.5
# A worker that could not renew its lease for this long stops sending and gives the run up: others may
# take it over only after LEASE_SECONDS, so the margin covers clock skew and a slow last write.
SELF_FENCE_SECONDS = LEASE_SECONDS / 2
# A previous holder's last image is at least LEASE_SECONDS - SELF_FENCE_SECONDS older than a takeover; a
# younger unreferenced file may be a character upload still committing.
ORPHAN_MIN_AGE_SECONDS = 5.0


async def run_execute(
    *,
    run_id: int,
    worker: str,
    listener: Callable[[dict], None] | None = None,
    provider: Provider | None = None,
    clock: Clock | None = None,
    on_start: Callable[[RunExecution], None] | None = None,
) -> BatchRun | None:
    """Claim the run for `worker` and execute it to its end; None when another worker holds it.

    The provider comes from the run's settings and shares its credential's limiter (in Redis with several
    processes) with every other run. An injected `provider` (tests, benchmarks) is the caller's own, and
    so is its limiter. `on_start` receives the execution before it starts, to stop it from outside.
    """
    run = await database_sync_to_async(run_claim)(run_id=run_id, worker=worker)
    if run is None:
        return None
    limiter = None
    if provider is None:
        try:
            provider = await database_sync_to_async(project_provider)(
                project_id=run.project_id, name=run.provider, model=run.model
            )
        except KeyUnreadable as error:  # run_start refuses this; the secrets changed since it started
            reason = f"The project's {run.provider} key cannot be used: {error}."
            await database_sync_to_async(run_fail)(run_id=run.pk, reason=reason, worker=worker)
            return await database_sync_to_async(BatchRun.objects.get)(pk=run.pk)
        limiter = limiter_for(provider, run.config)
    # The next run on a key starts where the last one ended (rate, concurrency, latency).
    profile = await database_sync_to_async(profile_for)(provider)
    execution_class = RunExecution
    if run.mode == BatchRun.Mode.BATCH:
        from generation.batches.execution import BatchExecution  # it builds on this module

        execution_class = BatchExecution
    execution = execution_class(
        run,
        provider=provider,
        worker=worker,
        clock=clock,
        limiter=limiter,
        listener=listener,
        profile=profile,
    )
    if on_start is not None:
        on_start(execution)
    return await execution.execute()


class RunExecution:
    """Executes one run in this process: prepare jobs, run the scheduler, watch for stop, finish."""

    def __init__(
        self,
        run: BatchRun,
        *,
        provider: Provider,
        worker: str,
        clock: Clock | None = None,
        limiter: Limiter | None = None,
        listener: Callable[[dict], None] | None = None,
        profile: CredentialProfile | None = None,
    ) -> None:
        self.run = run
        self.claimed_at = time.time()  # epoch, as file times are: every earlier holder's images predate it
        self.meter = CostMeter(provider=provider)
        self.provider = provider
        self.worker = worker
        self.clock = clock or LoopClock()
        self.config = EngineConfig.from_mapping(run.config)
        self.target = target_for(run)
        self.carried = Counters()
        self.handing_back = False  # this process is shutting down: the run goes back to the queue
        self.recorder = RunRecorder(
            run,
            worker=worker,
            config=self.config,
            clock=self.clock,
            listener=listener,
            on_lost=self._lost_from_any_thread,
            target=self.target,
            meter=self.meter,
        )
        self.scheduler = Scheduler(
            ImagesChecked(provider),
            config=self.config,
            clock=self.clock,
            hooks=self.recorder,
            limiter=limiter,
            profile=profile,
        )
        # Checked right before each request is sent: a run stops at its budget, not past it.
        self.scheduler.limiter = BudgetGuard(
            self.scheduler.limiter,
            meter=self.meter,
            stop=lambda message: self.scheduler.stop(StopReason.STOPPED, message),
        )
        self.stop_seen = asyncio.Event()
        self.plan = Plan()
        self.lost: str | None = None  # why this worker no longer holds the run, once it does not
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduling: asyncio.Future[RunResult] | None = None

    async def execute(self) -> BatchRun:
        bind_log_context(run_id=self.run.pk, project_id=self.run.project_id)
        self._loop = asyncio.get_running_loop()
        plan = await database_sync_to_async(self._prepare)()
        await self.recorder.publish("run.started", **run_payload(self.run))
        for key, reason in plan.skips:
            logger.info("Skipping %s: %s", plan.labels[key], reason.label)
            await self.recorder.skipped(key, reason)
        for key, reason in plan.blocked:
            logger.info("Not sending %s: %s", plan.labels[key], reason)
            await self.recorder.job_failed(Job(key=key, request=ImageRequest(prompt="")), Blocked(reason), 0)
        if self.run.stop_requested:  # taken over from a worker that died while the run was stopping
            self.stop()
        watcher = asyncio.create_task(self._watch())
        self._scheduling = asyncio.ensure_future(self.scheduler.run(plan.jobs))
        try:
            result = await self._scheduling
        except asyncio.CancelledError:
            if self.lost is None:
                raise
            return self.run  # the worker holding the run now finishes it
        finally:
            watcher.cancel()
        if self.handing_back and result.stop_reason == StopReason.STOPPED:
            if await self.recorder.durably("handing the run back", self._hand_back, result):
                await wake_worker(self.run.pk)  # another worker resumes it now, not after a lease
            return self.run
        if await self.recorder.durably("finishing the run", self._finish, result):
            await self.publish_outcome()
        return self.run

    async def publish_outcome(self) -> None:
        """run.finished, or run.daily_quota for a run parked until its quota resets (still active)."""
        parked = self.run.status == BatchRun.Status.WAITING_DAILY_QUOTA
        await self.recorder.publish("run.daily_quota" if parked else "run.finished", **run_payload(self.run))

    def stop(self) -> None:
        self.stop_seen.set()
        self.scheduler.stop()

    def hand_back(self) -> None:
        """This process is shutting down (SIGTERM): send nothing more, let the requests in flight finish
        within the grace period and store their images, then put the run back in the queue, unowned, for
        any worker to resume at once. Not a stop: nobody asked for the run to end."""
        if self.stop_seen.is_set():
            return
        self.handing_back = self.recorder.handing_back = True
        self.stop_seen.set()
        self.scheduler.stop(StopReason.STOPPED, "This worker is shutting down; another one resumes the run")

    def _lose(self, reason: str) -> None:
        """Another worker may hold the run now: stop sending at once, cancelling requests in flight too
        (no grace period: their results could not be recorded), and leave the rest to that worker."""
        if self.lost is not None:
            return
        self.lost = reason
        logger.warning("Run %s: worker %s gives it up (%s)", self.run.pk, self.worker, reason)
        self.stop_seen.set()
        if self._scheduling is not None:
            self._scheduling.cancel()

    def _lost_from_any_thread(self, reason: str) -> None:
        # Fenced writes find out in the ORM's thread; tasks may only be cancelled from the loop's.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._lose, reason)

    async def _watch(self) -> None:
        """Renew the lease (heartbeat) and watch the stop flag a page or another process may have set.

        A worker that cannot renew for SELF_FENCE_SECONDS (database down, process stalled) gives the run
        up itself, before any other worker may take it over."""
        renewed = self.clock.now()
        while True:
            await asyncio.sleep(STOP_POLL_SECONDS)
            try:
                async with asyncio.timeout(max(0.0, renewed + SELF_FENCE_SECONDS - self.clock.now())):
                    held, stop = await database_sync_to_async(run_beat)(
                        run_id=self.run.pk, worker=self.worker
                    )
            except Exception:  # the timeout too
                if self.clock.now() - renewed >= SELF_FENCE_SECONDS:
                    self._lose(f"could not renew its lease for {SELF_FENCE_SECONDS:g}s")
                    return
                logger.warning("Run %s: heartbeat failed; trying again", self.run.pk, exc_info=True)
                continue
            if not held:
                self._lose("another worker took the run over")
                return
            renewed = self.clock.now()
            if stop:
                self.handing_back = self.recorder.handing_back = False  # a stop asked for wins
                self.stop()

    def _prepare(self) -> Plan:
        run = self.run
        # Zeros for a new run; a run taken over from a worker that died carries its counts on.
        plan = self.target.plan(self.provider)
        # Counted from the attempt rows, not the last progress write of a worker that died: every
        # request it sent has its row (one is written before each request goes out).
        self.carried = attempt_counters(run_id=run.pk) + Counters(
            succeeded=plan.done,
            quota_wait_seconds=run.quota_wait_seconds,
            pacing_seconds=run.pacing_seconds,
        )
        self.recorder.begin(plan, self.carried, counts=self.scheduler.snapshot)
        self.plan = plan
        self.meter.prepare(
            run_id=run.pk,
            project_id=run.project_id,
            user_id=run.requested_by_id,
            spent=run.cost,
            unpriced=run.unpriced,
        )
        run.skipped = len(plan.skips)
        run.status = BatchRun.Status.RUNNING
        run.started = run.started or timezone.now()
        run.save(update_fields=["skipped", "status", "started"])
        return plan

    def _finish(self, result: RunResult) -> bool:
        """Record the outcome; False when another worker took the run over meanwhile (it finishes it)."""
        run, carried = self.run, self.carried
        run.status = {
            StopReason.COMPLETED: BatchRun.Status.COMPLETED,
            StopReason.STOPPED: BatchRun.Status.STOPPED,
        }.get(result.stop_reason, BatchRun.Status.FAILED)
        keys = {job.key for job in self.recorder.plan.jobs}
        removed = self.target.removed(keys)
        run.removed = len(removed)
        run.succeeded = carried.succeeded + self.target.count(set(result.succeeded) - removed)
        # A scene all of whose candidates failed counts once; one blocked before sending counts too.
        run.failed = self.target.count(set(result.failed) - removed) + len(self.plan.blocked)
        run.requests = carried.requests + result.requests
        run.retries = carried.retries + result.retries
        run.quota_errors = carried.quota_errors + result.quota_errors
        run.quota_wait_seconds = carried.quota_wait_seconds + result.quota_wait_seconds
        run.pacing_seconds = carried.pacing_seconds + result.pacing_seconds
        run.quota_waits = self.recorder.quota_waits
        run.eta_at = run.pacing_until = run.quota_resume_at = None
        run.reason = "" if result.stop_reason == StopReason.COMPLETED else result.stop_message
        run.cost, run.unpriced = self.meter.spent, self.meter.unpriced
        parked = self._park(result)
        run.counts_at = timezone.now()
        run.finished = None if parked else run.counts_at
        run.summary = run.summary_message(totals=self.target.totals())
        with transaction.atomic():
            if not self.recorder.still_held():
                return False
            run.save()
            self._record_open_failures(result)
            profile_record(
                provider=self.provider,
                profile=result.profile,
                jobs=len(result.succeeded) + len(result.failed),
                requests=result.requests,
            )
            # Our requests have all ended: a row still "running" was written by a worker that lost the
            # run to us while it was sending (see RunRecorder.attempt_started).
            GenerationAttempt.objects.filter(run=run, status=GenerationAttempt.Status.RUNNING).update(
                status=GenerationAttempt.Status.INTERRUPTED,
                finished=run.finished,
                error_kind="interrupted",
                error_message="Sent by a worker that had lost the run to another",
            )
            # The scenes still claimed are exactly the interrupted and never-attempted ones: a scene that
            # succeeded or failed gave its claim up in the hook that recorded it.
            run_release_scenes(run_id=run.pk)
            # A parked run announces run.parked to webhooks (webhooks.services.PARKING_REASONS).
            webhook_run_finished(run=run, stop_reason=result.stop_reason)
        self._delete_dead_workers_images()
        logger.info("Run %s %s: %s", run.pk, run.status, run.summary)
        return True

    def _delete_dead_workers_images(self) -> None:
        """A worker killed between saving an image and committing its row left the file behind. Only this
        run writes the project's generated images now, and a previous holder saved its images before this
        worker claimed the run (once that holder's lease had lapsed), so a file of then no row points to is
        such an orphan, however soon this run ends: its beat may have waited behind its writes."""
        if self.run.started is None:
            return
        orphan_media_delete(
            grace_seconds=max(ORPHAN_MIN_AGE_SECONDS, time.time() - self.claimed_at),
            project_id=self.run.project_id,
            newer_than=self.run.started.timestamp(),
        )

    def _park(self, result: RunResult) -> bool:
        """A spent per-day quota that resets parks the run until then, unowned, for a worker's scan to
        resume (selectors.runs_needing_a_worker, services.run_claim); nothing is sent meanwhile."""
        error = self.recorder.daily_error
        if result.stop_reason != StopReason.DAILY_QUOTA or (error is not None and not error.resets):
            return False
        run = self.run
        run.status = BatchRun.Status.WAITING_DAILY_QUOTA
        run.quota_resume_at = daily_reset_at(provider=self.provider.name, error=error)
        run.reason = parked_message(provider=self.provider.name, resume_at=run.quota_resume_at)
        run.owner, run.heartbeat = "", None
        return True

    def _record_open_failures(self, result: RunResult) -> None:
        """A job whose failure the job_failed hook could not write (the database was down then) still
        ends failed with its reason, not back in the queue with none."""
        for key, failure in result.failed.items():
            if self.target.claims(key):
                self.target.record_failure(key, failure.reason)

    def _hand_back(self, result: RunResult) -> bool:
        """The counts so far go with the run; False when another worker took it over meanwhile."""
        carried = self.carried + result.counters
        with transaction.atomic():
            if not self.recorder.still_held():
                return False
            self._record_open_failures(result)
            run_hand_back(run_id=self.run.pk, counters=carried)
        logger.info("Run %s handed back to the queue by %s", self.run.pk, self.worker)
        return True
