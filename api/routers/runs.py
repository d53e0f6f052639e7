"""Runs: start (scenes or references, with the page's options), stop, resume, retry; status and attempts."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Router, Status
from ninja.pagination import LimitOffsetPagination, paginate

from api.access import project_access
from api.errors import field_error
from api.schemas import AttemptOut, RunIn, RunOut
from api.services import run_resume
from generation import services
from generation.models import BatchRun, GenerationAttempt
from generation.selectors import run_payload
from projects.models import Project, Role, Scene

router = Router(tags=["runs"])
RUN = "/projects/{int:project_id}/runs/{int:run_id}"


def run_out(run: BatchRun, *, created: bool = False) -> dict:
    return {
        **run_payload(run),
        "url": reverse("api:run_get", args=[run.project_id, run.pk]),
        "page_url": reverse("project_detail", args=[run.project_id]),
        "created_now": created,
    }


def _started(run: BatchRun, created: bool) -> Status:
    # 201 when this request started the run; 200 with the project's active run otherwise (one at a time).
    return Status(201 if created else 200, run_out(run, created=created))


def _run(project: Project, run_id: int) -> BatchRun:
    return get_object_or_404(BatchRun.objects.select_related("requested_by"), pk=run_id, project=project)


def _overrides(payload: RunIn) -> dict:
    n = payload.concurrency
    # The same shape as `manage.py generate --concurrency N`.
    return {"max_concurrency": n, "start_concurrency": min(n, 5), "min_concurrency": 1} if n else {}


def _scene_ids(project: Project, payload: RunIn) -> list[int] | None:
    if payload.failed_only:
        ids = list(project.scenes.filter(status=Scene.Status.FAILED).values_list("pk", flat=True))
        if not ids:
            raise services.RunRefused("No scene has failed.")
        return ids
    if payload.scene_ids is None:
        return None
    unknown = set(payload.scene_ids) - set(
        project.scenes.filter(pk__in=payload.scene_ids).values_list("pk", flat=True)
    )
    if unknown:
        raise field_error("scene_ids", f"No such scene in this project: {sorted(unknown)}.")
    return payload.scene_ids


@router.get("/projects/{int:project_id}/runs", response=list[RunOut], url_name="run_list")
@paginate(LimitOffsetPagination)
def run_list(request: HttpRequest, project_id: int):
    project = project_access(request, project_id)
    return [run_out(r) for r in project.runs.select_related("requested_by").order_by("-created")]


@router.post("/projects/{int:project_id}/runs", response={200: RunOut, 201: RunOut}, url_name="run_start")
def run_start(request: HttpRequest, project_id: int, payload: RunIn):
    from generation.providers import available

    project = project_access(request, project_id, needs=Role.EDITOR)
    if payload.provider and payload.provider not in available():
        raise field_error("provider", f"Unknown provider; choose one of {', '.join(available())}.")
    if payload.kind == "characters":
        ids = payload.character_ids
        if ids is not None and set(ids) - set(project.characters.values_list("pk", flat=True)):
            raise field_error("character_ids", "No such character in this project.")
        run, created = services.character_run_start(
            project=project, user=request.user, character_ids=ids, overrides=_overrides(payload)
        )
        return _started(run, created)
    run, created = services.run_start(
        project=project,
        user=request.user,
        scene_ids=_scene_ids(project, payload),
        regenerate=payload.regenerate,
        overrides=_overrides(payload),
        provider=payload.provider,
    )
    return _started(run, created)


@router.get(RUN, response=RunOut, url_name="run_get")
def run_get(request: HttpRequest, project_id: int, run_id: int):
    """The run's status with the live page's counts; poll it until `active` is false."""
    return run_out(_run(project_access(request, project_id), run_id))


@router.post(RUN + "/stop", response=RunOut, url_name="run_stop")
def run_stop(request: HttpRequest, project_id: int, run_id: int):
    run = _run(project_access(request, project_id, needs=Role.EDITOR), run_id)
    if not run.is_active():
        return run_out(run)
    return run_out(services.run_stop(run=run))


@router.post(RUN + "/resume", response={200: RunOut, 201: RunOut}, url_name="run_resume")
def run_resume_view(request: HttpRequest, project_id: int, run_id: int):
    """A new run over what this one left undone (its failed and never-attempted scenes)."""
    run = _run(project_access(request, project_id, needs=Role.EDITOR), run_id)
    return _started(*run_resume(run=run, user=request.user))


@router.post(
    "/projects/{int:project_id}/scenes/{int:scene_id}/retry",
    response={200: RunOut, 201: RunOut},
    url_name="scene_retry",
)
def scene_retry(request: HttpRequest, project_id: int, scene_id: int):
    """Generate one scene again (the page's Retry): a new image even if it has one."""
    project = project_access(request, project_id, needs=Role.EDITOR)
    scene = get_object_or_404(Scene, pk=scene_id, project=project)
    run, created = services.run_start(
        project=project, user=request.user, scene_ids=[scene.pk], regenerate=scene.has_image()
    )
    return _started(run, created)


@router.get(RUN + "/attempts", response=list[AttemptOut], url_name="run_attempts")
@paginate(LimitOffsetPagination)
def run_attempts(request: HttpRequest, project_id: int, run_id: int):
    run = _run(project_access(request, project_id), run_id)
    return GenerationAttempt.objects.filter(run=run).order_by("started", "pk")
