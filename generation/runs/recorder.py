"""The scheduler's hooks for one run: every request becomes an attempt row, every outcome a fenced write,
and every change a live event.

The database is the truth: an image file is written before the row that points to it commits, and events
only mirror what was written. Every write is fenced on this worker still holding the run (BatchRun.owner),
so a worker that lost the run to another writes nothing more.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.db import transaction
from django.db.models import Exists, QuerySet
from django.utils import timezone

from generation.costs.meter import CostMeter
from generation.engine.clock import Clock
from generation.engine.config import EngineConfig
from generation.engine.hooks import Hooks
from generation.engine.jobs import Counters, Job, Progress, StopReason
from generation.live.events import send_event
from generation.models import BatchRun, GenerationAttempt
from generation.providers.base import DailyQuotaError, ImageResult, ProviderError, QuotaError
from generation.providers.redact import redact
from generation.runs.commits import GroupCommit, Take, Write
from generation.runs.counts import progress_payload, run_counts, same_counts
from generation.runs.outcomes import Answer, Outcome, RunCost, attempt_outcome, run_cost
from generation.runs.storage import durably, image_delete, image_save
from generation.runs.targets import Plan, Success, Target, item_of, item_payload, target_for
from ops.logs import bind_log_context
from projects.models import SkipReason
from projects.updates import update_each
from webhooks.services import endpoints_read_once

# What "Stopping: …" says after someone pressed Stop (the engine's own message is the run's reason).
STOP_REQUESTED = "no new requests; images already being generated may still arrive"
PROGRESS_WRITE_SECONDS = 1.0

T = TypeVar("T")


class RunRecorder(Hooks):
    """Scheduler hooks that write rows and publish events for one run, while `worker` holds it."""

    def __init__(
        self,
        run: BatchRun,
        *,
        worker: str,
        config: EngineConfig,
        clock: Clock,
        listener: Callable[[dict], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
        target: Target | None = None,
        meter: CostMeter | None = None,
    ) -> None:
        self.run = run
        self.meter = meter
        self.daily_error: DailyQuotaError | None = None  # the spent per-day quota the run stopped on
        self.worker = worker
        self.listener = listener
        self.on_lost = on_lost
        self.config = config
        self.clock = clock
        self.target = target or target_for(run)
        self.plan = Plan()
        self.carried = Counters()
        self.seq = 0
        self.attempt_ids: dict[int, int] = {}
        self._failed_before: dict[int, int] | None = None  # see _previous_attempt
        # A succeeded attempt's outcome, written with its image (job_succeeded), or with the failure when
        # the image could not be stored (job_failed): one database trip per generated item, not two.
        self._answered: dict[Hashable, Answer] = {}
        self.handing_back = False  # set by RunExecution.hand_back: the stop is not the user's
        self.counts: Callable[[], Progress] | None = None
        self._written: dict[str, Any] | None = None
        self.quota_waits = run.quota_waits  # quota pauses so far (a takeover's included)
        self.stopping = False
        self.stored = 0  # successes this recorder wrote
        self._status_written: dict[str, Any] | None = None
        self.commits = GroupCommit(alone=self._write_alone, together=self._write_together)
        self._group: _Group | None = None  # set while a group of item writes is being written

    def begin(self, plan: Plan, carried: Counters, *, counts: Callable[[], Progress] | None = None) -> None:
        """The run's items (for naming them in events), what it had done before a takeover, and where
        the live counts come from (the scheduler's snapshot), written with every item's outcome."""
        self.plan, self.carried, self.counts = plan, carried, counts

    async def publish(self, event_type: str, **payload: Any) -> None:
        self.seq += 1
        event = {"type": event_type, "run": self.run.pk, "seq": self.seq, **payload}
        event["ts"] = timezone.now().timestamp()  # send time (epoch s): clients can measure delivery
        if self.listener is not None:
            self.listener(event)
        await send_event(self.run.project_id, event)

    async def skipped(self, key: int, reason: SkipReason) -> None:
        # `reason` keeps the wording pages compare today; `reason_code` is what they should read.
        item = item_payload(self.plan, key)
        await self.publish(self.target.event("skipped"), item=item, reason=reason.label, reason_code=reason)

    async def durably(self, what: str, write: Callable[..., T], *args: Any) -> T:
        """A fenced write of this run, retried across a dropped connection (see storage.durably), after
        the item writes asked for before it: finishing or handing back the run must not overtake them."""
        await self.commits.idle()
        return await durably(what, write, *args, run_id=self.run.pk)

    async def item_write(self, what: str, write: Callable[..., T], *args: Any, key: Hashable) -> T:
        """The fenced write of the item `key`: as durably(), in one transaction with the item writes that
        queued up meanwhile (commits.GroupCommit)."""
        return await self.commits.write(what, write, *args, key=key)

    async def _write_alone(self, item: Write) -> Any:
        return await durably(item.what, item.write, *item.args, run_id=self.run.pk)

    async def _write_together(self, take: Take) -> list[Any]:
        return await durably("recording items", self._taken_sync, take, run_id=self.run.pk)

    def _taken_sync(self, take: Take) -> list[Any]:
        """The writes that waited until now: one is written alone, as it would be without a group."""
        items = take()
        if len(items) == 1:
            return [items[0].write(*items[0].args)]
        return self._together_sync(items) if items else []

    def _together_sync(self, items: list[Write]) -> list[Any]:
        """The writes in one transaction: the run's fence is checked once and its counts written once,
        the newest of them, at the end. What the items' first requests and images need of the database
        is done for all of them at once (Target.begin_group), and their rows inserted together."""
        with transaction.atomic(), endpoints_read_once():
            self._group = group = _Group()
            try:
                # Locked first: once the run row is ours in this transaction, no write needs a fence.
                if self.still_held():
                    self.target.begin_group(**self._shared(items))
                results = [item.write(*item.args) for item in items]
                self._insert_attempts(group.attempts)
                self._close_attempts(group.closes)
                self.target.end_group()
            finally:
                self._group = None
                self.target.group = None
            self._update_run(group.counts, group.cost)
        return results

    def _shared(self, items: list[Write]) -> dict[str, set[int]]:
        """The items whose first request (`started`) or image (`succeeded`) the group may write together
        with the others': those no other write of the group touches, so none sees the other half done."""
        if any(item.key is None for item in items):
            return {"started": set(), "succeeded": set()}
        touched = Counter(item_of(item.key) for item in items)
        once = {item for item, writes in touched.items() if writes == 1}
        started = {
            item_of(item.key)
            for item in items
            if item.write == self._attempt_started_sync and item.args[1] == 1  # (job, attempt_no, counts)
        }
        succeeded = {item_of(item.key) for item in items if item.write == self._succeeded_sync}
        return {"started": started & once, "succeeded": succeeded & once}

    def _ours(self) -> QuerySet[BatchRun]:
        """The run while this worker holds it: the fence on every write (empty once another took over)."""
        return BatchRun.objects.filter(pk=self.run.pk, owner=self.worker)

    def _fence(self) -> Exists | None:
        """The condition a write adds to stay ours: none once this transaction holds the run row locked
        (a takeover updates that row, so it waits for the commit); compiling it costs every write."""
        if self._group is not None and self._group.held:
            return None
        return Exists(self._ours())

    def still_held(self) -> bool:
        """Inside a transaction: lock the run row if we still hold it. A takeover updates that row, so it
        lands wholly before this transaction (nothing is written) or after it commits."""
        if self._group is not None and self._group.held is not None:
            return self._group.held  # locked (or found lost) earlier in this transaction
        held = self._ours().select_for_update().exists() or self._lost()
        return self._held(held)

    def _held(self, held: bool) -> bool:
        if self._group is not None:
            self._group.held = held
        return held

    def _lost(self) -> bool:
        if self.on_lost is not None:
            self.on_lost("another worker holds the run now")
        return False

    async def attempt_started(self, job: Job, attempt_no: int) -> None:
        # The job's own task: its later log lines carry the item's id.
        bind_log_context(**self.target.attempt_fields(job.key))
        counts = self._counts()
        held = await self.item_write(
            "recording the attempt", self._attempt_started_sync, job, attempt_no, counts, key=job.key
        )
        if held and attempt_no == 1:
            item = item_payload(self.plan, job.key)
            await self.publish(self.target.event("started"), item=item, counts=self.stored_counts())

    def _attempt_started_sync(self, job: Job, attempt_no: int, counts: dict[str, Any] | None) -> bool:
        with transaction.atomic(savepoint=False):  # a group's writes share its transaction, no savepoints
            held = self._lock_item(job.key, first=attempt_no == 1)
            if held is None:
                return False
            self._attempt_row(job, attempt_no)
            self._update_run(counts)  # the request counts from the moment its row exists
            return held

    def _lock_item(self, key: Hashable, *, first: bool) -> bool | None:
        """Lock the item's row for its attempt: None when the item is gone, else whether the run is still
        ours. Marking an item started (its first request) locks the row as gone() would: only when that
        matches nothing (the item gone, or the run lost) is there anything more to ask."""
        if not first:
            return None if self.target.gone(key) else True
        if self.target.mark_started(key, fence=self._fence()):
            return True
        return None if self.target.gone(key) else False

    def _attempt_row(self, job: Job, attempt_no: int) -> None:
        previous = self._previous_attempt(job.key)
        # No lock here, unlike the image: a row a lost worker writes after the takeover only stays
        # "running" until the new owner finishes the run, which marks it interrupted (see RunExecution).
        attempt = GenerationAttempt(
            run=self.run,
            number=attempt_no,
            provider=self.run.provider,
            model=self.run.model or "",
            seed=job.request.seed,
            retry_of_id=previous,
            started=timezone.now(),
            **self.target.attempt_fields(job.key),
            **self.target.attempt_record(job.key),
        )
        if self._group is not None:
            self._group.attempts.append((job.key, attempt))  # inserted with the group's others
            return
        attempt.save(force_insert=True)
        self._remember(job.key, attempt)

    def _insert_attempts(self, attempts: list[tuple[Hashable, GenerationAttempt]]) -> None:
        GenerationAttempt.objects.bulk_create([attempt for _, attempt in attempts])
        for key, attempt in attempts:
            self._remember(key, attempt)

    def _remember(self, key: Hashable, attempt: GenerationAttempt) -> None:
        # Once committed: a write retried after a rollback must not point at the row that rolled back.
        transaction.on_commit(lambda: self.attempt_ids.__setitem__(key, attempt.pk))

    def _previous_attempt(self, key: Hashable) -> int | None:
        """What an attempt retries: the item's previous one in this run, else its last failed one before
        this recorder's first request (read then for all the run's items: one query, not one per item)."""
        if (previous := self.attempt_ids.get(key)) is not None:
            return previous
        if self._failed_before is None:
            self._failed_before = self.target.last_failed_attempts({item_of(j.key) for j in self.plan.jobs})
        return self._failed_before.get(item_of(key))

    async def attempt_finished(self, job, attempt_no, error, result, latency) -> None:
        if result is not None:
            # Written with the image, in its transaction. A worker that loses the run in between leaves
            # the row "running", for the new owner to mark interrupted (see RunExecution._finish).
            self._answered[job.key] = Answer(job, result, latency, timezone.now())
            return
        outcome = await database_sync_to_async(self._outcome)(job, error, None, latency, timezone.now())
        await self.item_write("closing the attempt", self._close, job.key, outcome, key=job.key)

    def _outcome(
        self, job: Job, error, result: ImageResult | None, latency: float, finished: datetime
    ) -> Outcome:
        """The attempt's closing fields; bills the attempt (once: a retried write reuses the outcome)."""
        fields = attempt_outcome(
            error=error, result=result, latency=latency, finished=finished, model=self.run.model
        )
        if isinstance(error, DailyQuotaError):
            self.daily_error = error
        outcome = Outcome(fields)
        # None: the run was lost before this attempt's row was written, so there is nothing to bill it on.
        if self.attempt_ids.get(job.key) is not None and self.meter is not None:
            cost = self.meter.attempt(job.request, result, error)
            fields.update(cost=cost.cost, unpriced=cost.unpriced)
            if cost.billed:  # added to the run's total with the row (budgets read it)
                outcome.run_cost = run_cost(cost)
        return outcome

    def _close(self, key: Hashable, outcome: Outcome) -> None:
        """Write an attempt's outcome and its cost to the run."""
        self._close_attempt(key, outcome.fields)
        if outcome.run_cost:
            self._update_run(None, outcome.run_cost)

    def _close_attempt(self, key: Hashable, fields: dict[str, Any]) -> None:
        attempt_id = self.attempt_ids.get(key)
        if attempt_id is None:
            return
        if self._group is not None and self._group.held:
            self._group.closes[attempt_id] = fields  # closed with the group's others, at its end
            return
        # Only a running attempt of a run we hold: a new owner may have marked it interrupted already.
        attempts = GenerationAttempt.objects.filter(pk=attempt_id, status=GenerationAttempt.Status.RUNNING)
        if (fence := self._fence()) is not None:
            attempts = attempts.filter(fence)
        attempts.update(**fields)

    @staticmethod
    def _close_attempts(closes: dict[int, dict[str, Any]]) -> None:
        if closes:
            running = GenerationAttempt.objects.filter(status=GenerationAttempt.Status.RUNNING)
            update_each(running, closes)

    def _answer_outcome(self, key: Hashable) -> Outcome | None:
        """The outcome of the item's succeeded attempt not written yet, worked out once."""
        answer = self._answered.get(key)
        if answer is None:
            return None
        if answer.outcome is None:
            answer.outcome = self._outcome(answer.job, None, answer.result, answer.latency, answer.finished)
        return answer.outcome

    async def job_succeeded(self, job: Job, result: ImageResult, attempts: int) -> None:
        # Stored first: a crash before the row commits leaves an orphan file (cleanup_media deletes it),
        # never a broken item. A failed save or write leaves no file: StoreError tells the engine why.
        name = await asyncio.to_thread(image_save, self.target.image_name(job.key, result), result.image)
        success = Success(job, name, result, attempts, self.attempt_ids.get(job.key))
        # Counted here, before the write: the scheduler counts a success only once this hook returns.
        self.stored += 1
        try:
            recorded = await self.item_write(
                "recording the image", self._succeeded_sync, success, self._counts(), key=job.key
            )
        except BaseException:
            self.stored -= 1
            await asyncio.to_thread(image_delete, name)
            raise
        if not recorded:  # another worker holds the run now and generates this item itself
            await asyncio.to_thread(image_delete, name)
            return
        await self.publish(
            self.target.event("succeeded"),
            item=item_payload(self.plan, job.key),
            attempts=attempts,
            thumbnail=self.target.image_url(job.key, self.seq),
            counts=self.stored_counts(),
        )

    def _succeeded_sync(self, success: Success, counts: dict[str, Any] | None) -> bool:
        key = success.job.key
        answer = self._answer_outcome(key)
        with transaction.atomic(savepoint=False):
            # With the item's row: a reload never shows fewer than the events.
            if not self._hold(counts, run_cost=answer.run_cost if answer else None):
                return False
            if answer is not None:
                self._close_attempt(key, answer.fields)
            recorded = self.target.record_success(success)
        self._answer_written(key)
        return recorded

    def _answer_written(self, key: Hashable) -> None:
        # Forgotten once committed: a group that rolls back is written again, answer included.
        transaction.on_commit(lambda: self._answered.pop(key, None))

    async def job_failed(self, job: Job, error: ProviderError, attempts: int) -> None:
        reason = error.message if isinstance(error, ProviderError) else redact(str(error))
        if not await self.item_write(
            "recording the failure", self._failed_sync, job.key, reason, self._counts(), key=job.key
        ):
            return
        await self.publish(
            self.target.event("failed"),
            item=item_payload(self.plan, job.key),
            reason=reason,
            kind=error.kind,
            attempts=attempts,
            counts=self.stored_counts(),
        )

    def _failed_sync(self, key: int, reason: str, counts: dict[str, Any] | None) -> bool:
        answer = self._answer_outcome(key)  # an image came, but could not be stored
        with transaction.atomic(savepoint=False):
            if not self.still_held():
                return False
            if answer is not None:
                self._close(key, answer)
            if self.target.gone(key):
                return False
            self.target.record_failure(key, reason)
            self._update_run(counts)
        self._answer_written(key)
        return True

    def _counts(self) -> dict[str, Any] | None:
        """The run's counts now, as BatchRun fields; taken in the loop, written in the ORM's thread (whose
        calls run one at a time in the order they were made, so the row never goes back)."""
        if self.counts is None:
            return None
        return run_counts(self.counts(), carried=self.carried, at=timezone.now(), stored=self.stored)

    def stored_counts(self) -> dict[str, Any] | None:
        """The counts as last written (times as ISO strings): item events carry them, so a page shows
        what the row says as soon as the item's outcome arrives, not only at the next run.progress."""
        if self._written is None:
            return None
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in self._written.items()}

    def _update_run(self, counts: dict[str, Any] | None, cost: RunCost | None = None) -> int | None:
        """One fenced update of the run: its counts (unless unchanged) and attempts' `cost`. Returns the
        rows it updated (0: the run is another worker's now), None when there was nothing to write."""
        if self._group is not None:
            self._group.defer(counts, cost)  # written once, at the group's end
            return None
        if counts is not None and self._stale(counts):
            counts = None
        fields = cost.fields() if cost is not None else {}
        # When they were taken and the ETA change every time; the counts themselves mostly do not.
        changed = counts is not None and (self._written is None or not same_counts(counts, self._written))
        if changed:
            fields.update(counts, heartbeat=timezone.now())
        if not fields:
            return None
        updated = self._ours().update(**fields)
        if changed:
            self._written_on_commit(counts)
        return updated

    def _stale(self, counts: dict[str, Any]) -> bool:
        """Taken before the counts the row holds: a group of item writes that waited its turn may come
        after a progress write with newer ones, and writing its counts would take the row back."""
        return self._written is not None and counts["counts_at"] < self._written["counts_at"]

    def _hold(self, counts: dict[str, Any] | None, *, run_cost: RunCost | None) -> bool:
        """Inside a transaction: as still_held(), with the same statement writing the run's counts and
        adding an attempt's cost (an update locks the row as select_for_update does)."""
        updated = self._update_run(counts, run_cost)
        if updated is None:
            return self.still_held()
        return self._held(bool(updated) or self._lost())

    def _written_on_commit(self, counts: dict[str, Any]) -> None:
        """What the row holds from the moment the write commits (at once outside a transaction). Not
        before: a transaction the database drops is retried, and must write the counts again."""

        def written() -> None:
            self._written = counts

        transaction.on_commit(written)

    async def quota_wait(self, seconds: float, until: float, wait_no: int, error: QuotaError) -> None:
        resume_at = timezone.now() + timedelta(seconds=seconds)
        self.quota_waits += 1
        await database_sync_to_async(self._quota_wait_sync)(resume_at)
        await self.publish(
            "run.quota_wait",
            seconds=round(seconds, 1),
            until=resume_at.isoformat(),
            quota_waits=self.quota_waits,
            budget_seconds=self.config.quota_wait_max_total,
            reason=error.message,
        )

    def _quota_wait_sync(self, resume_at: datetime) -> None:
        self._set_status(BatchRun.Status.WAITING_QUOTA, quota_resume_at=resume_at)
        self._ours().update(quota_waits=self.quota_waits)

    async def pacing(self, seconds: float | None, requests_per_minute: float | None) -> None:
        # No error happened: the run holds itself to the quota. Said aloud, or a paced run looks stuck.
        rate = round(requests_per_minute) if requests_per_minute else None
        payload: dict[str, Any] = {"requests_per_minute": rate}
        if seconds is not None:
            resume_at = timezone.now() + timedelta(seconds=seconds)
            payload.update(seconds=round(seconds, 1), until=resume_at.isoformat())
            # Stored too, so a page loaded during the wait shows the same banner.
            await database_sync_to_async(self._ours().update)(
                pacing_until=resume_at, requests_per_minute=rate
            )
        await self.publish("run.pacing", **payload)

    def _set_status(self, status: str, *, quota_resume_at: datetime | None = None) -> None:
        fields = _status_fields(status, quota_resume_at)
        if fields == self._status_written:  # the progress hook asks after every outcome
            return
        self._ours().filter(status__in=BatchRun.ACTIVE).exclude(status=BatchRun.Status.STOPPING).update(
            **fields
        )
        self._status_written = fields

    async def run_stopping(self, reason: StopReason, message: str) -> None:
        if self.handing_back and reason == StopReason.STOPPED:
            return  # the run is not stopping, it moves to another worker: nothing for pages to show
        self.stopping = True
        await database_sync_to_async(self._ours().filter(status__in=BatchRun.ACTIVE).update)(
            status=BatchRun.Status.STOPPING
        )
        if reason == StopReason.STOPPED:
            # Pages show "Stopping: <message>": say what stopping does, not "Stopped on request" again.
            message = STOP_REQUESTED
        await self.publish("run.stopping", reason=reason.value, message=message)

    async def progress(self, snapshot: Progress) -> None:
        counts = self._unchanged(snapshot)
        if counts is None:
            counts = await database_sync_to_async(self.write_progress)(snapshot)
        payload = progress_payload(snapshot, skipped=self.run.skipped, counts=counts, carried=self.carried)
        status = BatchRun.Status.STOPPING if self.stopping else _status_of(snapshot)
        await self.publish("run.progress", **payload, quota_waits=self.quota_waits, status=status)

    def _unchanged(self, snapshot: Progress) -> dict[str, Any] | None:
        """The stored counts, when the row already holds the snapshot's counts and status: most outcomes'
        own writes stored them, and a trip to the ORM's thread to write nothing costs the loop."""
        if self._written is None or _status_fields(_status_of(snapshot)) != self._status_written:
            return None
        counts = run_counts(snapshot, carried=self.carried, at=timezone.now(), stored=self.stored)
        return self._written if same_counts(counts, self._written) else None

    def write_progress(self, snapshot: Progress) -> dict[str, Any]:
        """Store the counts and the status (waiting for quota or running) a snapshot shows, before the
        event that shows them leaves (an unchanged count is not written again); returns the stored ones."""
        self._set_status(_status_of(snapshot))
        counts = run_counts(snapshot, carried=self.carried, at=timezone.now(), stored=self.stored)
        self._update_run(counts)
        # What the row holds, unchanged counts not rewritten: the event shows exactly what a reload would.
        return self._written or counts


class _Group:
    """What the writes of one group share: whether the run is still ours (known once its row is locked,
    at the start), and the newest counts, the costs added, the attempt rows and the attempts' closes,
    written at the end."""

    def __init__(self) -> None:
        self.held: bool | None = None
        self.counts: dict[str, Any] | None = None
        self.cost: RunCost | None = None
        self.attempts: list[tuple[Hashable, GenerationAttempt]] = []  # rows to insert, for these keys
        self.closes: dict[int, dict[str, Any]] = {}  # attempts' closing fields, by attempt id

    def defer(self, counts: dict[str, Any] | None, cost: RunCost | None) -> None:
        if counts is not None and (self.counts is None or counts["counts_at"] >= self.counts["counts_at"]):
            self.counts = counts
        if cost is not None:
            self.cost = cost if self.cost is None else self.cost + cost


def _status_fields(status: str, quota_resume_at: datetime | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"status": status}
    # Still waiting without a new end time: the stored one stands; running again: it is cleared.
    if status != BatchRun.Status.WAITING_QUOTA or quota_resume_at is not None:
        fields["quota_resume_at"] = quota_resume_at
    return fields


def _status_of(snapshot: Progress) -> str:
    return BatchRun.Status.WAITING_QUOTA if snapshot.paused_until else BatchRun.Status.RUNNING
