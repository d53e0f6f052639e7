"""Workflows of batch generation: start, stop, claim and end runs.

Scene versions live in versions.py, orphan media clean-up in media.py, the socket and form actions in
actions.py; reads in selectors.py; views, consumers and commands reach both through generation/services.py
and generation/selectors.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from generation.costs.estimates import batch_supported, budget_refusal
from generation.credentials.services import project_api_key
from generation.credentials.vault import KeyUnreadable
from generation.engine.config import EngineConfig
from generation.engine.jobs import Counters
from generation.live.events import stop_worker, wake_worker
from generation.models import BatchRun, GenerationAttempt
from generation.runs.selectors import active_run, missing_references
from projects.models import Character, Project, Scene
from webhooks.services import webhook_run_event, webhook_run_finished

logger = logging.getLogger("generation.services")
MIN_CANDIDATES, MAX_CANDIDATES = 1, 4


class RunRefused(Exception):
    """A run cannot start; `missing` names characters that need a reference image first."""

    def __init__(self, message: str, *, missing: Sequence[Character] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.missing = list(missing)


def engine_config(overrides: dict | None = None) -> EngineConfig:
    try:
        return EngineConfig.from_mapping({**settings.GENERATION_ENGINE, **(overrides or {})})
    except ValueError as exc:
        raise RunRefused(str(exc)) from exc


def run_start(
    *,
    project: Project,
    user,
    scene_ids: Sequence[int] | None = None,
    regenerate: bool = False,
    overrides: dict | None = None,
    provider: str = "",
    candidates: int = 1,
    mode: str = BatchRun.Mode.SYNC,
) -> tuple[BatchRun, bool]:
    """Start a scenes run, or return the project's active run and False. Refuses on a failed preflight.

    `candidates` images are asked per scene (variations to pick from), each a request of its own. `mode`
    "batch" sends it as one provider batch (half price, within 24 h) where the provider has one."""
    if not MIN_CANDIDATES <= candidates <= MAX_CANDIDATES:
        raise RunRefused(f"Ask for {MIN_CANDIDATES} to {MAX_CANDIDATES} variations per scene.")
    current = active_run(project)
    if current is not None:
        return current, False
    scenes = list(project.scenes.order_by("position"))
    if scene_ids is not None:
        wanted = set(scene_ids)
        scenes = [s for s in scenes if s.pk in wanted]
    if not scenes:
        raise RunRefused("There are no scenes to generate.")
    missing = missing_references(scenes=scenes, regenerate=regenerate)
    if missing:
        names = ", ".join(c.name for c in missing)
        raise RunRefused(f"These characters need a reference image first: {names}.", missing=missing)
    if mode == BatchRun.Mode.BATCH and not batch_supported(project=project, provider=provider):
        raise RunRefused("This provider has no batch API: generate the scenes one by one instead.")
    refusal = budget_refusal(
        project=project, user=user, scenes=scenes, regenerate=regenerate, provider=provider, mode=mode
    )
    if refusal:
        raise RunRefused(refusal)
    return _create_run(
        project=project,
        user=user,
        kind=BatchRun.Kind.SCENES,
        items=scenes,
        regenerate=regenerate,
        overrides=overrides,
        provider=provider,
        candidates=candidates,
        mode=mode,
    )


def character_run_start(
    *, project: Project, user, character_ids: Sequence[int] | None = None, overrides: dict | None = None
) -> tuple[BatchRun, bool]:
    """Generate reference portraits from descriptions, for characters without a reference (or those named)."""
    current = active_run(project)
    if current is not None:
        return current, False
    characters = project.characters.order_by("name")
    characters = (
        characters.filter(pk__in=character_ids)
        if character_ids is not None
        else characters.filter(reference="")
    )
    if not characters:
        raise RunRefused("Every character already has a reference image.")
    return _create_run(
        project=project,
        user=user,
        kind=BatchRun.Kind.CHARACTERS,
        items=list(characters),
        regenerate=character_ids is not None,
        overrides=overrides,
        provider="",
    )


def _key_preflight(*, project: Project, provider: str) -> None:
    """Refuse a run whose project key cannot be unsealed: it must not quietly spend the studio's key."""
    try:
        project_api_key(project_id=project.pk, provider=provider)
    except KeyUnreadable as error:
        raise RunRefused(f"The project's {provider} key cannot be used: {error}.") from None


def _create_run(
    *, project, user, kind, items, regenerate, overrides, provider, candidates=1, mode=BatchRun.Mode.SYNC
) -> tuple[BatchRun, bool]:
    _key_preflight(project=project, provider=provider or project.provider or settings.GENERATION_PROVIDER)
    config = engine_config(overrides)
    try:
        with transaction.atomic():
            run = BatchRun.objects.create(
                project=project,
                kind=kind,
                requested_by=user,
                regenerate=regenerate,
                candidates=candidates,
                total=len(items),
                provider=provider or project.provider or settings.GENERATION_PROVIDER,
                model=project.provider_model,
                config=config.as_dict(),
                mode=mode,
            )
            (run.scenes if kind == BatchRun.Kind.SCENES else run.characters).set(items)
            transaction.on_commit(lambda: async_to_sync(wake_worker)(run.pk))
            transaction.on_commit(lambda: webhook_run_event(run=run, event="run.started"), robust=True)
    except IntegrityError:
        # Lost the race to another start: the database allowed only one active run.
        current = active_run(project)
        if current is None:
            raise
        return current, False
    return run, True


def run_stop(*, run: BatchRun) -> BatchRun:
    """Ask the run to stop. A queued run no worker has picked up, or one parked on a daily quota,
    stops at once."""
    now = timezone.now()
    for waiting, reason in (
        (BatchRun.Status.QUEUED, "Stopped before it started"),
        (BatchRun.Status.WAITING_DAILY_QUOTA, "Stopped while waiting for the daily quota"),
    ):
        BatchRun.objects.filter(pk=run.pk, status=waiting, owner="").update(
            status=BatchRun.Status.STOPPED, stop_requested=True, finished=now, reason=reason
        )
    BatchRun.objects.filter(pk=run.pk, status__in=BatchRun.ACTIVE).update(
        status=BatchRun.Status.STOPPING, stop_requested=True
    )
    run.refresh_from_db()
    if run.status == BatchRun.Status.STOPPING:
        transaction.on_commit(lambda: async_to_sync(stop_worker)(run.pk))
    if run.status == BatchRun.Status.STOPPED and not run.summary:
        run.summary = run.summary_message()
        run.save(update_fields=["summary"])
        webhook_run_finished(run=run, stop_reason="stopped")
    return run


def run_resume(*, run: BatchRun) -> BatchRun:
    """Resume a run parked on a daily quota now, before the reset (the quota may be back early)."""
    now = timezone.now()
    resumed = BatchRun.objects.filter(pk=run.pk, status=BatchRun.Status.WAITING_DAILY_QUOTA, owner="").update(
        quota_resume_at=now
    )
    if resumed:
        transaction.on_commit(lambda: async_to_sync(wake_worker)(run.pk))
    run.refresh_from_db()
    return run


def scenes_claim(*, run: BatchRun, scene_ids: Sequence[int]) -> int:
    """Claim scenes for `run` with one conditional update; a scene held by another live run is left alone."""
    live = BatchRun.objects.filter(status__in=BatchRun.ACTIVE).exclude(pk=run.pk).values("pk")
    free = Q(claimed_by__isnull=True) | Q(claimed_by=run.pk) | ~Q(claimed_by__in=live)
    return Scene.objects.filter(free, pk__in=scene_ids).update(claimed_by=run.pk)


LEASE_SECONDS = BatchRun.LEASE_SECONDS


def run_claim(*, run_id: int, worker: str, lease_seconds: float = LEASE_SECONDS) -> BatchRun | None:
    """Take a run for this worker: a queued run, or an active one whose owner's heartbeat went stale.

    One conditional statement decides; when nothing matched another worker got there first. Taking a run
    over from a worker that stopped beating also cleans up after it (see _run_requeue).
    """
    now = timezone.now()
    stale = now - timedelta(seconds=lease_seconds)
    takeable = (
        Q(status=BatchRun.Status.QUEUED, owner="")
        | Q(owner=worker)
        | Q(heartbeat__lt=stale)
        # Parked on a daily quota: resumable once the reset time has passed.
        | Q(status=BatchRun.Status.WAITING_DAILY_QUOTA, owner="", quota_resume_at__lte=now)
    )
    with transaction.atomic():
        # The row lock the update would take anyway, taken first to learn whom we take the run from. The
        # old owner's fenced writes lock the same row, so each of them lands wholly before or after this.
        previous = (
            BatchRun.objects.select_for_update()
            .filter(takeable, pk=run_id, status__in=BatchRun.ACTIVE)
            .values_list("owner", flat=True)
            .first()
        )
        if previous is None:
            return None
        BatchRun.objects.filter(pk=run_id).update(owner=worker, heartbeat=now)
        if previous not in ("", worker):
            _run_requeue(run_id=run_id, previous=previous, now=now)
    return BatchRun.objects.select_related("project", "requested_by").get(pk=run_id)


def _run_requeue(*, run_id: int, previous: str, now) -> None:
    """The old owner died mid-run. Its requests in flight will never be recorded, nor will images it
    received but had not stored yet: mark those attempts interrupted, and put their scenes back in the
    queue for the new owner to generate again."""
    attempts = GenerationAttempt.objects.filter(run_id=run_id)
    Status = GenerationAttempt.Status
    lost = attempts.filter(status=Status.SUCCEEDED, scene__isnull=False, versions__isnull=True)
    interrupted = lost.update(
        status=Status.INTERRUPTED,
        error_kind="interrupted",
        error_message=f"The image arrived, but worker {previous} stopped before storing it",
    )
    interrupted += attempts.filter(status=Status.RUNNING).update(
        status=Status.INTERRUPTED,
        finished=now,
        error_kind="interrupted",
        error_message=f"Worker {previous} stopped renewing its lease; another worker took the run over",
    )
    requeued = Scene.objects.filter(claimed_by=run_id).mark_requeue()
    logger.warning(
        "Took run %s over from %s: %d attempt(s) interrupted, %d scene(s) requeued",
        run_id,
        previous,
        interrupted,
        requeued,
    )


def run_fail(*, run_id: int, reason: str, worker: str | None = None) -> None:
    """End a run that cannot go on (a crash in its worker); its scenes are released for the next run.

    With `worker`, only while that worker still holds the run: one that lost it must not end it.
    """
    runs = BatchRun.objects.filter(pk=run_id, status__in=BatchRun.ACTIVE)
    if worker is not None:
        runs = runs.filter(owner=worker)
    with transaction.atomic():
        run = runs.select_for_update().first()
        if run is None:
            return
        run.status, run.reason, run.finished = BatchRun.Status.FAILED, reason, timezone.now()
        run.summary = run.summary_message()
        run.save()
        run_release_scenes(run_id=run_id)
        webhook_run_finished(run=run, stop_reason="error")


def attempt_counters(*, run_id: int) -> Counters:
    """The run's requests, retries and quota errors as its attempt rows tell them: one row is written
    before each request goes out, so these stay exact across takeovers and crashes.

    A retry is a request sent after the same item's previous one failed with a transient error."""
    Status = GenerationAttempt.Status
    rows = (
        GenerationAttempt.objects.filter(run_id=run_id)
        .exclude(error_kind="not_sent")
        .order_by("scene_id", "character_id", "started", "pk")
        .values_list("scene_id", "character_id", "status", "error_kind")
    )
    counters, previous = Counters(), None
    for scene_id, character_id, status, kind in rows:
        item = (scene_id, character_id)
        if previous is not None and previous[0] == item and previous[1:] == (Status.FAILED, "transient"):
            counters.retries += 1
        counters.requests += 1
        counters.quota_errors += kind == "quota"
        previous = (item, status, kind)
    return counters


def run_hand_back(*, run_id: int, counters: Counters) -> None:
    """The worker holding the run shuts down: the run goes back to the queue, unowned, so any worker
    claims it at once (not after its lease lapses); what it left mid-generation is requeued."""
    BatchRun.objects.filter(pk=run_id, status__in=BatchRun.ACTIVE).update(
        status=BatchRun.Status.QUEUED,
        owner="",
        heartbeat=None,
        quota_resume_at=None,
        requests=counters.requests,
        retries=counters.retries,
        quota_errors=counters.quota_errors,
        quota_wait_seconds=counters.quota_wait_seconds,
        pacing_seconds=counters.pacing_seconds,
        succeeded=counters.succeeded,
    )
    run_release_scenes(run_id=run_id)


def run_beat(*, run_id: int, worker: str) -> tuple[bool, bool]:
    """Renew `worker`'s lease on the run: (still its own, a stop was asked for). One statement while
    nothing changed, which is nearly every beat: a worker beats for every run it holds, twice a second."""
    now = timezone.now()
    ours = BatchRun.objects.filter(pk=run_id, owner=worker)
    if ours.filter(stop_requested=False).update(heartbeat=now):
        return True, False
    held = bool(ours.update(heartbeat=now))
    return held, held and BatchRun.objects.filter(pk=run_id, stop_requested=True).exists()


def run_lease_lapsed(*, run: BatchRun, lease_seconds: float = LEASE_SECONDS) -> bool:
    """Whether nobody holds the active run: never claimed, handed back, or its owner stopped renewing."""
    if not run.is_active():
        return False
    if not run.owner or run.heartbeat is None:
        return True
    return run.heartbeat < timezone.now() - timedelta(seconds=lease_seconds)


def run_force_stop(*, run_id: int, reason: str) -> BatchRun | None:
    """End an active run nobody holds any more (its worker or CLI died): stopped, with its scenes
    released and its unanswered attempts interrupted. None when a live worker holds it (ask it to stop
    with run_stop instead) or it already ended."""
    with transaction.atomic():
        run = BatchRun.objects.select_for_update().filter(pk=run_id, status__in=BatchRun.ACTIVE).first()
        if run is None or not run_lease_lapsed(run=run):
            return None
        now = timezone.now()
        GenerationAttempt.objects.filter(run=run, status=GenerationAttempt.Status.RUNNING).update(
            status=GenerationAttempt.Status.INTERRUPTED,
            finished=now,
            error_kind="interrupted",
            error_message=reason,
        )
        counters = attempt_counters(run_id=run_id)
        run.requests, run.retries, run.quota_errors = (
            counters.requests,
            counters.retries,
            counters.quota_errors,
        )
        run.status, run.stop_requested, run.owner = BatchRun.Status.STOPPED, True, ""
        run.reason, run.finished = reason, now
        run.summary = run.summary_message()
        run.save()
        run_release_scenes(run_id=run_id)
        webhook_run_finished(run=run, stop_reason="stopped")
    return run


def run_release_scenes(*, run_id: int) -> None:
    """A run ended: requeue what it left mid-generation, and let go of every scene it still claims."""
    Scene.objects.filter(claimed_by=run_id).mark_requeue()
    Scene.objects.filter(claimed_by=run_id).update(claimed_by=None)
