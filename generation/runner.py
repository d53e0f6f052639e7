"""Runs one BatchRun: adapts the Django-free scheduler to the database and to live events.

The database is the truth: every request is an attempt row, an image file is written before the row that
points to it commits, and events only mirror what was written.

Several workers may run: the one named in BatchRun.owner holds the run (a lease renewed by its heartbeat).
Every write a worker makes for a run is fenced on still holding it, so a worker that lost the run to
another (its lease lapsed while it was stalled or cut off) writes nothing more, and stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from channels.db import database_sync_to_async
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, QuerySet
from django.urls import reverse
from django.utils import timezone

from generation.engine.clock import Clock, LoopClock
from generation.engine.config import EngineConfig
from generation.engine.hooks import Hooks
from generation.engine.jobs import Job, Progress, RunResult, StopReason
from generation.engine.limiter import Limiter
from generation.engine.scheduler import Interrupted, Scheduler
from generation.models import BatchRun, GenerationAttempt, SceneVersion
from generation.providers.base import ImageRequest, ImageResult, ProviderError, QuotaError, Reference
from generation.realtime import send_event
from generation.selectors import run_payload
from generation.services import LEASE_SECONDS, claimable_scenes, run_release_scenes, scene_version_add
from ops.logs import bind_log_context
from projects.models import Character, Scene, character_reference_path, scene_image_path
from webhooks.services import webhook_run_event, webhook_run_finished

logger = logging.getLogger("generation.runner")

PORTRAIT_PROMPT = (
    "Character reference portrait of {name}. {description} Full face and figure, plain light background, "
    "storyboard character sheet."
)
STOP_POLL_SECONDS = 0.5
PROGRESS_WRITE_SECONDS = 1.0
# A worker that could not renew its lease for this long stops sending and gives the run up: others may
# take it over only after LEASE_SECONDS, so the margin covers clock skew and a slow last write.
SELF_FENCE_SECONDS = LEASE_SECONDS / 2


def _mime(path: str) -> str:
    return {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif"}.get(
        Path(path).suffix.lower(), "image/png"
    )


@dataclass
class Carried:
    """What the run had done before this worker took it over from one that died (zeros otherwise)."""

    succeeded: int = 0
    requests: int = 0
    retries: int = 0
    quota_errors: int = 0
    quota_wait_seconds: float = 0.0


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
    ) -> None:
        self.run = run
        self.worker = worker
        self.listener = listener
        self.on_lost = on_lost
        self.config = config
        self.clock = clock
        self.carried = Carried()
        self.seq = 0
        self.attempt_ids: dict[int, int] = {}
        self.labels: dict[int, str] = {}
        self.positions: dict[int, int] = {}
        self._last_progress_write = -1e9

    async def publish(self, event_type: str, **payload: Any) -> None:
        self.seq += 1
        event = {"type": event_type, "run": self.run.pk, "seq": self.seq, **payload}
        event["ts"] = timezone.now().timestamp()  # send time (epoch s): clients can measure delivery
        if self.listener is not None:
            self.listener(event)
        await send_event(self.run.project_id, event)

    def _is_scenes(self) -> bool:
        return self.run.kind == BatchRun.Kind.SCENES

    def _ours(self) -> QuerySet[BatchRun]:
        """The run while this worker holds it: the fence on every write (empty once another took over)."""
        return BatchRun.objects.filter(pk=self.run.pk, owner=self.worker)

    def still_held(self) -> bool:
        """Inside a transaction: lock the run row if we still hold it. A takeover updates that row, so it
        lands wholly before this transaction (nothing is written) or after it commits."""
        if self._ours().select_for_update().exists():
            return True
        if self.on_lost is not None:
            self.on_lost("another worker holds the run now")
        return False

    def _target(self, key: int) -> dict[str, int]:
        return {"scene_id": key} if self._is_scenes() else {"character_id": key}

    def _item(self, key: int) -> dict[str, Any]:
        return {"id": key, "position": self.positions.get(key), "label": self.labels.get(key, str(key))}

    async def attempt_started(self, job: Job, attempt_no: int) -> None:
        bind_log_context(**self._target(job.key))  # the job's own task: its later lines carry the id
        held = await database_sync_to_async(self._attempt_started_sync)(job, attempt_no)
        if held and attempt_no == 1:
            await self.publish(
                "scene.started" if self._is_scenes() else "character.started", item=self._item(job.key)
            )

    def _attempt_started_sync(self, job: Job, attempt_no: int) -> bool:
        previous = self.attempt_ids.get(job.key) or self._last_failed_attempt(job.key)
        self.attempt_ids.pop(job.key, None)
        # No lock here, unlike the image: a row a lost worker writes after the takeover only stays
        # "running" until the new owner finishes the run, which marks it interrupted (see _finish).
        attempt = GenerationAttempt.objects.create(
            run=self.run,
            number=attempt_no,
            provider=self.run.provider,
            model=self.run.model or "",
            seed=job.request.seed,
            retry_of_id=previous,
            started=timezone.now(),
            **self._target(job.key),
        )
        self.attempt_ids[job.key] = attempt.pk
        if attempt_no == 1 and self._is_scenes():
            # Fenced: a scene the new owner may have generated since must not look "generating" again.
            return bool(
                Scene.objects.filter(Exists(self._ours()), pk=job.key).update(
                    status=Scene.Status.GENERATING, updated=timezone.now()
                )
            )
        return True

    def _last_failed_attempt(self, key: int) -> int | None:
        earlier = GenerationAttempt.objects.filter(
            **self._target(key), status=GenerationAttempt.Status.FAILED
        )
        return earlier.order_by("-started", "-pk").values_list("pk", flat=True).first()

    async def attempt_finished(self, job, attempt_no, error, result, latency) -> None:
        await database_sync_to_async(self._attempt_finished_sync)(job, error, result, latency)

    def _attempt_finished_sync(self, job: Job, error, result: ImageResult | None, latency: float) -> None:
        fields: dict[str, Any] = {"finished": timezone.now(), "latency_ms": max(0, round(latency * 1000))}
        if result is not None:
            fields.update(status=GenerationAttempt.Status.SUCCEEDED, model=result.model or self.run.model)
        elif isinstance(error, Interrupted):
            fields.update(
                status=GenerationAttempt.Status.INTERRUPTED,
                error_kind="interrupted",
                error_message=str(error),
            )
        else:
            fields.update(status=GenerationAttempt.Status.FAILED, **_error_fields(error))
        attempt_id = self.attempt_ids.get(job.key)
        if attempt_id is not None:  # None: the run was lost before this attempt's row was written
            # Only a running attempt of a run we hold: a new owner may have marked it interrupted already.
            GenerationAttempt.objects.filter(
                Exists(self._ours()), pk=attempt_id, status=GenerationAttempt.Status.RUNNING
            ).update(**fields)

    async def job_succeeded(self, job: Job, result: ImageResult, attempts: int) -> None:
        # Stored first: a crash before the row commits leaves an orphan file (cleanup_media deletes it),
        # never a broken scene.
        name = await asyncio.to_thread(self._store_image, job.key, result)
        try:
            recorded = await database_sync_to_async(self._succeeded_sync)(job, name, result, attempts)
        except Exception:
            await asyncio.to_thread(default_storage.delete, name)
            raise
        if not recorded:  # another worker holds the run now and generates this scene itself
            await asyncio.to_thread(default_storage.delete, name)
            return
        url = self._image_url(job.key)
        await self.publish(
            "scene.succeeded" if self._is_scenes() else "character.succeeded",
            item=self._item(job.key),
            attempts=attempts,
            thumbnail=url,
        )

    def _store_image(self, key: int, result: ImageResult) -> str:
        suffix = ".jpg" if result.mime == "image/jpeg" else ".png"
        holder = (
            Scene(project_id=self.run.project_id)
            if self._is_scenes()
            else Character(project_id=self.run.project_id)
        )
        path_for = scene_image_path if self._is_scenes() else character_reference_path
        return default_storage.save(path_for(holder, f"{key}{suffix}"), ContentFile(result.image))

    def _succeeded_sync(self, job: Job, name: str, result: ImageResult, attempts: int) -> bool:
        key, now = job.key, timezone.now()
        with transaction.atomic():
            if not self.still_held():
                return False
            if self._is_scenes():
                scene_version_add(
                    scene_id=key,
                    image=name,
                    attempt_id=self.attempt_ids.get(key),
                    provider=self.run.provider,
                    model=result.model or self.run.model,
                    seed=result.seed if result.seed is not None else job.request.seed,
                    prompt=job.request.prompt,
                    attempts=attempts,
                )
                Scene.objects.filter(pk=key).update(
                    image=name, status=Scene.Status.READY, last_error="", claimed_by=None, updated=now
                )
                webhook_run_event(run=self.run, event="scene.ready", scene_id=key)
            else:
                old = Character.objects.filter(pk=key).values_list("reference", flat=True).first()
                Character.objects.filter(pk=key).update(reference=name, claimed_by=None, updated=now)
                if old:
                    transaction.on_commit(lambda: default_storage.delete(old))
        return True

    def _image_url(self, key: int) -> str:
        name = "scene_image" if self._is_scenes() else "character_reference"
        return reverse(name, args=[self.run.project_id, key]) + f"?thumb=1&v={self.seq}"

    async def job_failed(self, job: Job, error: ProviderError, attempts: int) -> None:
        reason = error.message if isinstance(error, ProviderError) else str(error)
        if not await database_sync_to_async(self._failed_sync)(job, reason):
            return
        await self.publish(
            "scene.failed" if self._is_scenes() else "character.failed",
            item=self._item(job.key),
            reason=reason,
            kind=error.kind,
            attempts=attempts,
        )

    def _failed_sync(self, job: Job, reason: str) -> bool:
        with transaction.atomic():
            if not self.still_held():
                return False
            if self._is_scenes():
                Scene.objects.filter(pk=job.key).update(
                    status=Scene.Status.FAILED,
                    last_error=reason[:2000],
                    claimed_by=None,
                    updated=timezone.now(),
                )
                webhook_run_event(run=self.run, event="scene.failed", scene_id=job.key)
        return True

    async def quota_wait(self, seconds: float, until: float, wait_no: int, error: QuotaError) -> None:
        resume_at = timezone.now() + timedelta(seconds=seconds)
        await database_sync_to_async(self._set_status)(
            BatchRun.Status.WAITING_QUOTA, quota_resume_at=resume_at
        )
        await self.publish(
            "run.quota_wait",
            seconds=round(seconds, 1),
            until=resume_at.isoformat(),
            attempt=wait_no,
            max_attempts=self.max_quota_waits(),
            reason=error.message,
        )

    async def pacing(self, seconds: float | None, requests_per_minute: float | None) -> None:
        # No error happened: the run holds itself to the quota. Said aloud, or a paced run looks stuck.
        payload: dict[str, Any] = {
            "requests_per_minute": round(requests_per_minute) if requests_per_minute else None
        }
        if seconds is not None:
            resume_at = timezone.now() + timedelta(seconds=seconds)
            payload.update(seconds=round(seconds, 1), until=resume_at.isoformat())
        await self.publish("run.pacing", **payload)

    def max_quota_waits(self) -> int:
        # No fixed count caps quota waits, the total wait budget does: this is how many default waits fit.
        return max(1, round(self.config.quota_wait_max_total / self.config.quota_wait_default))

    def _set_status(self, status: str, *, quota_resume_at: datetime | None = None) -> None:
        fields: dict[str, Any] = {"status": status}
        # Still waiting without a new end time: the stored one stands; running again: it is cleared.
        if status != BatchRun.Status.WAITING_QUOTA or quota_resume_at is not None:
            fields["quota_resume_at"] = quota_resume_at
        self._ours().filter(status__in=BatchRun.ACTIVE).exclude(status=BatchRun.Status.STOPPING).update(
            **fields
        )

    async def run_stopping(self, reason: StopReason, message: str) -> None:
        await database_sync_to_async(self._ours().filter(status__in=BatchRun.ACTIVE).update)(
            status=BatchRun.Status.STOPPING
        )
        await self.publish("run.stopping", reason=reason.value, message=message)

    async def progress(self, snapshot: Progress) -> None:
        now = self.clock.now()
        if now - self._last_progress_write >= PROGRESS_WRITE_SECONDS or snapshot.remaining == 0:
            self._last_progress_write = now
            await database_sync_to_async(self._write_progress)(snapshot)
        payload = progress_payload(snapshot, skipped=self.run.skipped, carried=self.carried)
        await self.publish("run.progress", **payload)

    def _write_progress(self, snapshot: Progress) -> None:
        status = BatchRun.Status.WAITING_QUOTA if snapshot.paused_until else BatchRun.Status.RUNNING
        self._set_status(status)
        carried = self.carried
        self._ours().update(
            succeeded=carried.succeeded + snapshot.succeeded,
            failed=snapshot.failed,
            requests=carried.requests + snapshot.requests,
            retries=carried.retries + snapshot.retries,
            quota_errors=carried.quota_errors + snapshot.quota_errors,
            heartbeat=timezone.now(),
        )


def progress_payload(snapshot: Progress, *, skipped: int, carried: Carried | None = None) -> dict[str, Any]:
    carried = carried or Carried()
    return {
        "total": snapshot.total + skipped + carried.succeeded,
        "succeeded": carried.succeeded + snapshot.succeeded,
        "failed": snapshot.failed,
        "skipped": skipped,
        "in_flight": snapshot.in_flight,
        "concurrency": snapshot.concurrency,
        "requests": carried.requests + snapshot.requests,
        "retries": carried.retries + snapshot.retries,
        "quota_errors": carried.quota_errors + snapshot.quota_errors,
        "eta_seconds": None if snapshot.eta_seconds is None else round(snapshot.eta_seconds, 1),
    }


def _error_fields(error: BaseException | None) -> dict[str, Any]:
    if isinstance(error, ProviderError):
        return {
            "error_kind": error.kind,
            "error_message": error.message[:2000],
            "http_status": error.http_status,
        }
    return {"error_kind": "error", "error_message": str(error)[:2000]}


class RunExecution:
    """Executes one run in this process: prepare jobs, run the scheduler, watch for stop, finish."""

    def __init__(
        self,
        run: BatchRun,
        *,
        provider,
        worker: str,
        clock: Clock | None = None,
        limiter: Limiter | None = None,
        listener: Callable[[dict], None] | None = None,
    ) -> None:
        self.run = run
        self.provider = provider
        self.worker = worker
        self.clock = clock or LoopClock()
        self.config = EngineConfig.from_mapping(run.config)
        self.recorder = RunRecorder(
            run,
            worker=worker,
            config=self.config,
            clock=self.clock,
            listener=listener,
            on_lost=self._lost_from_any_thread,
        )
        self.scheduler = Scheduler(
            provider, config=self.config, clock=self.clock, hooks=self.recorder, limiter=limiter
        )
        self.stop_seen = asyncio.Event()
        self.lost: str | None = None  # why this worker no longer holds the run, once it does not
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduling: asyncio.Future[RunResult] | None = None

    async def execute(self) -> BatchRun:
        bind_log_context(run_id=self.run.pk, project_id=self.run.project_id)
        self._loop = asyncio.get_running_loop()
        jobs, skips = await database_sync_to_async(self._prepare)()
        await self.recorder.publish("run.started", **run_payload(self.run))
        for key, reason in skips:
            logger.info("Skipping %s: %s", self.recorder.labels[key], reason)
            await self.recorder.publish("scene.skipped", item=self.recorder._item(key), reason=reason)
        if self.run.stop_requested:  # taken over from a worker that died while the run was stopping
            self.stop()
        watcher = asyncio.create_task(self._watch())
        self._scheduling = asyncio.ensure_future(self.scheduler.run(jobs))
        try:
            result = await self._scheduling
        except asyncio.CancelledError:
            if self.lost is None:
                raise
            return self.run  # the worker holding the run now finishes it
        finally:
            watcher.cancel()
        if await database_sync_to_async(self._finish)(result):
            await self.recorder.publish("run.finished", **run_payload(self.run))
        return self.run

    def stop(self) -> None:
        self.stop_seen.set()
        self.scheduler.stop()

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
                    held, stop = await database_sync_to_async(self._beat)()
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
                self.stop()

    def _beat(self) -> tuple[bool, bool]:
        """(still ours, stop requested). Renewing matches nothing once another worker took the run over."""
        held = BatchRun.objects.filter(pk=self.run.pk, owner=self.worker).update(heartbeat=timezone.now())
        return bool(held), BatchRun.objects.filter(pk=self.run.pk, stop_requested=True).exists()

    def _prepare(self) -> tuple[list[Job], list[tuple[int, str]]]:
        run = self.run
        # Zeros for a new run; a run taken over from a worker that died carries its counts on.
        self.recorder.carried = Carried(
            requests=run.requests,
            retries=run.retries,
            quota_errors=run.quota_errors,
            quota_wait_seconds=run.quota_wait_seconds,
        )
        if self.run.kind == BatchRun.Kind.SCENES:
            jobs, skips = self._scene_jobs()
        else:
            jobs, skips = self._character_jobs(), []
        self.run.skipped = len(skips)
        self.run.status = BatchRun.Status.RUNNING
        self.run.started = self.run.started or timezone.now()
        self.run.save(update_fields=["skipped", "status", "started"])
        return jobs, skips

    def _scene_jobs(self) -> tuple[list[Job], list[tuple[int, str]]]:
        scenes = list(self.run.scenes.order_by("position").prefetch_related("characters"))
        # Scenes this run generated before it was taken over: done, neither skipped nor generated again.
        done = set(SceneVersion.objects.filter(attempt__run=self.run).values_list("scene_id", flat=True))
        self.recorder.carried.succeeded = sum(1 for scene in scenes if scene.pk in done)
        skips, wanted = [], []
        for scene in scenes:
            self.recorder.labels[scene.pk] = f"Scene {scene.position}"
            self.recorder.positions[scene.pk] = scene.position
            if scene.pk in done:
                continue
            reason = scene.skip_reason(regenerate=self.run.regenerate)
            (skips.append((scene.pk, reason)) if reason else wanted.append(scene))
        empty = [pk for pk, reason in skips if reason == "empty prompt"]
        Scene.objects.filter(pk__in=empty).update(status=Scene.Status.SKIPPED, updated=timezone.now())
        claimable_scenes(run=self.run, scene_ids=[s.pk for s in wanted])
        claimed = set(
            Scene.objects.filter(pk__in=[s.pk for s in wanted], claimed_by=self.run.pk).values_list(
                "pk", flat=True
            )
        )
        skips += [(s.pk, "being generated by another run") for s in wanted if s.pk not in claimed]
        references = _reference_cache()
        jobs = [self._scene_job(s, references) for s in wanted if s.pk in claimed]
        return jobs, skips

    def _scene_job(self, scene: Scene, references: dict) -> Job:
        characters = sorted((c for c in scene.characters.all() if c.reference), key=lambda c: (c.name, c.pk))
        refs = tuple(references(c) for c in characters[: self.provider.max_references])
        request = ImageRequest(
            prompt=scene.prompt.strip(),
            references=refs,
            seed=random.randrange(2**31),
            model=self.run.model,
            label=f"Scene {scene.position}",
        )
        return Job(key=scene.pk, request=request, label=f"Scene {scene.position}")

    def _character_jobs(self) -> list[Job]:
        jobs = []
        for character in self.run.characters.order_by("name"):
            self.recorder.labels[character.pk] = character.name
            prompt = PORTRAIT_PROMPT.format(name=character.name, description=character.description or "")
            request = ImageRequest(
                prompt=prompt,
                seed=random.randrange(2**31),
                model=self.run.model,
                label=character.name,
                aspect_ratio="1:1",
                size="1024x1024",
            )
            jobs.append(Job(key=character.pk, request=request, label=character.name))
        return jobs

    def _finish(self, result: RunResult) -> bool:
        """Record the outcome; False when another worker took the run over meanwhile (it finishes it)."""
        run, carried = self.run, self.recorder.carried
        run.status = {
            StopReason.COMPLETED: BatchRun.Status.COMPLETED,
            StopReason.STOPPED: BatchRun.Status.STOPPED,
        }.get(result.stop_reason, BatchRun.Status.FAILED)
        run.succeeded, run.failed = carried.succeeded + len(result.succeeded), len(result.failed)
        run.requests = carried.requests + result.requests
        run.retries = carried.retries + result.retries
        run.quota_errors = carried.quota_errors + result.quota_errors
        run.quota_wait_seconds = carried.quota_wait_seconds + result.quota_wait_seconds
        run.reason = "" if result.stop_reason == StopReason.COMPLETED else result.stop_message
        run.finished = timezone.now()
        run.summary = run.summary_message()
        with transaction.atomic():
            if not self.recorder.still_held():
                return False
            run.save()
            # Our requests have all ended: a row still "running" was written by a worker that lost the
            # run to us while it was sending (see RunRecorder._attempt_started_sync).
            GenerationAttempt.objects.filter(run=run, status=GenerationAttempt.Status.RUNNING).update(
                status=GenerationAttempt.Status.INTERRUPTED,
                finished=run.finished,
                error_kind="interrupted",
                error_message="Sent by a worker that had lost the run to another",
            )
            # The scenes still claimed are exactly the interrupted and never-attempted ones: a scene that
            # succeeded or failed gave its claim up in the hook that recorded it.
            run_release_scenes(run_id=run.pk)
            webhook_run_finished(run=run, stop_reason=result.stop_reason)
        logger.info("Run %s %s: %s", run.pk, run.status, run.summary)
        return True


def _reference_cache():
    cache: dict[int, Reference] = {}

    def get(character: Character) -> Reference:
        if character.pk not in cache:
            data = Path(character.reference.path).read_bytes()
            cache[character.pk] = Reference(
                name=character.name, image=data, mime=_mime(character.reference.name)
            )
        return cache[character.pk]

    return get


async def execute_run(
    run_id: int, *, worker: str, provider=None, clock: Clock | None = None, limiter: Limiter | None = None
) -> BatchRun | None:
    """Claim and execute a run; None when another worker holds it."""
    from generation.providers.factory import provider_for
    from generation.services import run_claim

    run = await database_sync_to_async(run_claim)(run_id=run_id, worker=worker)
    if run is None:
        return None
    provider = provider or provider_for(run.provider, run.model)
    execution = RunExecution(run, provider=provider, worker=worker, clock=clock, limiter=limiter)
    return await execution.execute()
