"""Workflows of batch generation: start, stop and execute runs. Views, consumers and commands call these."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from generation.engine.config import EngineConfig
from generation.models import BatchRun, SceneVersion
from generation.realtime import stop_worker, wake_worker
from projects.models import Character, Project, Scene


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


def missing_references(*, scenes: Sequence[Scene], regenerate: bool = False) -> list[Character]:
    """Characters in the scenes this run would generate that have no reference image yet."""
    to_generate = [s.pk for s in scenes if not s.skip_reason(regenerate=regenerate)]
    return list(Character.objects.filter(scenes__in=to_generate, reference="").distinct().order_by("name"))


def active_run(project: Project) -> BatchRun | None:
    return project.runs.filter(status__in=BatchRun.ACTIVE).first()


def run_start(
    *,
    project: Project,
    user,
    scene_ids: Sequence[int] | None = None,
    regenerate: bool = False,
    overrides: dict | None = None,
    provider: str = "",
) -> tuple[BatchRun, bool]:
    """Start a scenes run, or return the project's active run and False. Refuses on a failed preflight."""
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
    return _create_run(
        project=project,
        user=user,
        kind=BatchRun.Kind.SCENES,
        items=scenes,
        regenerate=regenerate,
        overrides=overrides,
        provider=provider,
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


def _create_run(*, project, user, kind, items, regenerate, overrides, provider) -> tuple[BatchRun, bool]:
    config = engine_config(overrides)
    try:
        with transaction.atomic():
            run = BatchRun.objects.create(
                project=project,
                kind=kind,
                requested_by=user,
                regenerate=regenerate,
                total=len(items),
                provider=provider or project.provider or settings.GENERATION_PROVIDER,
                model=project.provider_model,
                config=config.as_dict(),
            )
            (run.scenes if kind == BatchRun.Kind.SCENES else run.characters).set(items)
            transaction.on_commit(lambda: async_to_sync(wake_worker)(run.pk))
    except IntegrityError:
        # Lost the race to another start: the database allowed only one active run.
        current = active_run(project)
        if current is None:
            raise
        return current, False
    return run, True


def run_stop(*, run: BatchRun) -> BatchRun:
    """Ask the run to stop. A queued run no worker has picked up stops at once."""
    now = timezone.now()
    BatchRun.objects.filter(pk=run.pk, status=BatchRun.Status.QUEUED, owner="").update(
        status=BatchRun.Status.STOPPED,
        stop_requested=True,
        finished=now,
        reason="Stopped before it started",
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
    return run


def claimable_scenes(*, run: BatchRun, scene_ids: Sequence[int]) -> int:
    """Claim scenes for `run` with one conditional update; a scene held by another live run is left alone."""
    live = BatchRun.objects.filter(status__in=BatchRun.ACTIVE).exclude(pk=run.pk).values("pk")
    free = Q(claimed_by__isnull=True) | Q(claimed_by=run.pk) | ~Q(claimed_by__in=live)
    return Scene.objects.filter(free, pk__in=scene_ids).update(claimed_by=run.pk)


LEASE_SECONDS = 15


def run_claim(*, run_id: int, worker: str, lease_seconds: float = LEASE_SECONDS) -> BatchRun | None:
    """Take a run for this worker: a queued run, or an active one whose owner's heartbeat went stale.

    One conditional update decides; when nothing got updated another worker got there first.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=lease_seconds)
    takeable = Q(status=BatchRun.Status.QUEUED, owner="") | Q(owner=worker) | Q(heartbeat__lt=stale)
    claimed = BatchRun.objects.filter(takeable, pk=run_id, status__in=BatchRun.ACTIVE).update(
        owner=worker, heartbeat=now
    )
    if not claimed:
        return None
    return BatchRun.objects.select_related("project", "requested_by").get(pk=run_id)


def runs_needing_a_worker(*, lease_seconds: float = LEASE_SECONDS) -> list[int]:
    """Active runs nobody holds: never picked up, or held by a worker that stopped beating."""
    stale = timezone.now() - timedelta(seconds=lease_seconds)
    unowned = Q(owner="") | Q(heartbeat__lt=stale) | Q(heartbeat__isnull=True)
    return list(
        BatchRun.objects.filter(unowned, status__in=BatchRun.ACTIVE)
        .order_by("created")
        .values_list("pk", flat=True)
    )


def run_fail(*, run_id: int, reason: str) -> None:
    """End a run that cannot go on (a crash in its worker); its scenes are released for the next run."""
    run = BatchRun.objects.filter(pk=run_id, status__in=BatchRun.ACTIVE).first()
    if run is None:
        return
    run.status, run.reason, run.finished = BatchRun.Status.FAILED, reason, timezone.now()
    run.summary = run.summary_message()
    with transaction.atomic():
        run.save()
        Scene.objects.filter(claimed_by=run_id, status=Scene.Status.GENERATING).update(
            status=Scene.Status.PENDING
        )
        Scene.objects.filter(claimed_by=run_id).update(claimed_by=None)


def perform_action(*, project_id: int, user, action: str, scene_id: int | None = None) -> dict:
    """One entry for start / stop / retry from a socket or a form. Raises RunRefused with the reason."""
    from projects.access import project_for_user
    from projects.models import Role

    project, _ = project_for_user(user, project_id, needs=Role.EDITOR)
    if action == "stop":
        run = active_run(project)
        if run is None:
            raise RunRefused("No run is active.")
        return {"type": "ack", "action": action, "run": run_stop(run=run).pk}
    if action == "start_characters":
        run, created = character_run_start(project=project, user=user)
    elif action == "retry":
        scene = project.scenes.filter(pk=scene_id).first()
        if scene is None:
            raise RunRefused("No such scene.")
        run, created = run_start(
            project=project, user=user, scene_ids=[scene.pk], regenerate=scene.has_image()
        )
    elif action == "retry_failed":
        failed = list(project.scenes.filter(status=Scene.Status.FAILED).values_list("pk", flat=True))
        if not failed:
            raise RunRefused("No scene has failed.")
        run, created = run_start(project=project, user=user, scene_ids=failed)
    else:
        run, created = run_start(project=project, user=user)
    return {"type": "ack", "action": action, "run": run.pk, "created": created}


def scene_version_add(
    *,
    scene_id: int,
    image: str,
    attempt_id: int | None,
    provider: str,
    model: str,
    seed: int | None,
    prompt: str,
    attempts: int,
) -> SceneVersion:
    """Record a new image of a scene. An image that predates versions is kept as a version first."""
    scene = Scene.objects.select_for_update().get(pk=scene_id)
    versions = SceneVersion.objects.filter(scene=scene)
    if scene.image and not versions.filter(image=scene.image.name).exists():
        SceneVersion.objects.create(
            scene=scene, number=_next_version(scene), image=scene.image.name, prompt=scene.prompt
        )
    return SceneVersion.objects.create(
        scene=scene,
        number=_next_version(scene),
        image=image,
        attempt_id=attempt_id,
        provider=provider,
        model=model,
        seed=seed,
        prompt=prompt,
        attempts=attempts,
    )


def _next_version(scene: Scene) -> int:
    last = SceneVersion.objects.filter(scene=scene).aggregate(m=models.Max("number"))["m"]
    return (last or 0) + 1


def scene_version_make_current(*, version: SceneVersion) -> Scene:
    """Show an older (or newer) image again; nothing is deleted."""
    scene = version.scene
    scene.image = version.image.name
    scene.status = Scene.Status.READY
    scene.last_error = ""
    scene.save(update_fields=["image", "status", "last_error", "updated"])
    return scene
