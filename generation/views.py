from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from generation import selectors
from generation.models import SceneVersion
from generation.services import RunRefused, perform_action, scene_version_make_current
from projects.access import project_for_user
from projects.models import Role
from projects.views import send_image

ACTION_MESSAGES = {
    "start": "Generation started.",
    "start_characters": "Generating the missing character references.",
    "retry": "Generating the scene again.",
    "retry_failed": "Retrying every failed scene.",
    "stop": "Stopping: no new requests; those in flight may still finish.",
}


@login_required
@require_POST
def run_action(request: HttpRequest, project_id: int, action: str) -> HttpResponse:
    """The form (no-JavaScript) twin of the socket actions; both call the same service."""
    project, _ = project_for_user(request.user, project_id, needs=Role.EDITOR)
    if action not in ACTION_MESSAGES:
        raise Http404("No such action")
    scene = request.POST.get("scene")
    try:
        reply = perform_action(
            project_id=project.pk, user=request.user, action=action, scene_id=int(scene) if scene else None
        )
    except RunRefused as exc:
        messages.error(request, exc.message)
        if exc.missing:
            request.session["missing_references"] = [c.name for c in exc.missing]
    else:
        text = (
            ACTION_MESSAGES[action] if reply.get("created", True) else "A run is already active; showing it."
        )
        messages.success(request, text)
    return redirect(project)


@login_required
def project_status(request: HttpRequest, project_id: int) -> JsonResponse:
    """The same snapshot the socket sends on connect, for polling clients."""
    project, _ = project_for_user(request.user, project_id)
    return JsonResponse(selectors.project_snapshot(project_id=project.pk))


@login_required
def version_image(request: HttpRequest, project_id: int, scene_id: int, version_id: int) -> FileResponse:
    project, _ = project_for_user(request.user, project_id)
    version = get_object_or_404(SceneVersion, pk=version_id, scene_id=scene_id, scene__project=project)
    return send_image(Path(version.image.path), thumb="thumb" in request.GET)


@login_required
@require_POST
def version_make_current(
    request: HttpRequest, project_id: int, scene_id: int, version_id: int
) -> HttpResponse:
    project, _ = project_for_user(request.user, project_id, needs=Role.EDITOR)
    version = get_object_or_404(SceneVersion, pk=version_id, scene_id=scene_id, scene__project=project)
    scene_version_make_current(version=version)
    messages.success(request, f"Scene {version.scene.position} shows version {version.number} again.")
    return redirect("scene_edit", project.pk, scene_id)
