"""One entry for the run actions a socket or a form asks for: start, stop, resume, retry, variations."""

from __future__ import annotations

from dataclasses import dataclass

from django.shortcuts import get_object_or_404

from generation.models import BatchRun
from generation.runs.selectors import active_run
from generation.runs.services import RunRefused, character_run_start, run_resume, run_start, run_stop
from projects.access import membership_for
from projects.models import Role, Scene


@dataclass(frozen=True)
class ActionDone:
    """What a socket or form action did: the run it started, stopped or found already active."""

    action: str
    run: BatchRun
    created: bool


def perform_action(
    *, project_id: int, user, action: str, scene_id: int | None = None, candidates: int = 1
) -> ActionDone:
    """One entry for start / stop / retry from a socket or a form, for editors and owners.

    Raises what membership_for raises, Http404 for a scene not in the project, RunRefused with the reason.
    """
    project = membership_for(user=user, project_id=project_id, needs=Role.EDITOR).project
    if action == "stop":
        run = active_run(project)
        if run is None:
            raise RunRefused("No run is active.")
        return ActionDone(action, run_stop(run=run), created=False)
    if action == "resume":
        run = active_run(project)
        if run is None or run.status != BatchRun.Status.WAITING_DAILY_QUOTA:
            raise RunRefused("No run is waiting for the daily quota.")
        return ActionDone(action, run_resume(run=run), created=False)
    if action == "start_characters":
        run, created = character_run_start(project=project, user=user)
    elif action == "retry":
        scene = get_object_or_404(project.scenes, pk=scene_id)
        run, created = run_start(
            project=project, user=user, scene_ids=[scene.pk], regenerate=scene.has_image()
        )
    elif action == "variations":
        scene = get_object_or_404(project.scenes, pk=scene_id)
        run, created = run_start(
            project=project, user=user, scene_ids=[scene.pk], regenerate=True, candidates=candidates
        )
    elif action == "retry_failed":
        failed = list(project.scenes.filter(status=Scene.Status.FAILED).values_list("pk", flat=True))
        if not failed:
            raise RunRefused("No scene has failed.")
        # Regenerate: a failed scene may still show an older image, and its last attempt failed all the same.
        run, created = run_start(project=project, user=user, scene_ids=failed, regenerate=True)
    elif action == "start_batch":
        run, created = run_start(project=project, user=user, mode=BatchRun.Mode.BATCH)
    else:
        run, created = run_start(project=project, user=user, candidates=candidates)
    return ActionDone(action, run, created)
