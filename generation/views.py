from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from generation import selectors
from generation.costs.estimates import duration_text, span
from generation.costs.prices import money
from generation.credentials.models import KEYED_PROVIDERS
from generation.forms import ProviderKeyForm
from generation.models import SceneVersion
from generation.services import (
    RunRefused,
    perform_action,
    provider_key_remove,
    provider_key_set,
    scene_version_make_current,
)
from projects.access import membership_for
from projects.images import send_image
from projects.models import Role, Scene

ACTION_MESSAGES = {
    "start": "Generation started.",
    "start_characters": "Generating the missing character references.",
    "retry": "Generating the scene again.",
    "retry_failed": "Retrying every failed scene.",
    "variations": "Generating variations of the scene.",
    "stop": "Stopping: no new requests; those in flight may still finish.",
    "resume": "Resuming now, before the daily quota's reset.",
    "start_batch": "Sent as a provider batch: half price, results within 24 h.",
}


@login_required
@require_POST
def run_action(request: HttpRequest, project_id: int, action: str) -> HttpResponse:
    """The form (no-JavaScript) twin of the socket actions; both call the same service."""
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    if action not in ACTION_MESSAGES:
        raise Http404("No such action")
    scene = request.POST.get("scene") or None
    scene_id = _scene_id(scene) if scene else None
    if scene and scene_id is None:
        # The page never sends this: a hand-made request gets a plain answer, not a 500 from int().
        return HttpResponseBadRequest("“scene” must be a scene number.", content_type="text/plain")
    candidates = _scene_id(request.POST.get("candidates") or "1")
    if candidates is None:
        return HttpResponseBadRequest("“candidates” must be a number.", content_type="text/plain")
    try:
        done = perform_action(
            project_id=project.pk, user=request.user, action=action, scene_id=scene_id, candidates=candidates
        )
    except RunRefused as exc:
        messages.error(request, exc.message)
        if exc.missing:
            request.session["missing_references"] = [c.name for c in exc.missing]
    else:
        fresh = done.created or action == "stop"
        text = ACTION_MESSAGES[action] if fresh else "A run is already active; showing it."
        messages.success(request, text)
    return redirect(project)


def _scene_id(value: str) -> int | None:
    """A scene primary key from form input, or None: digits only, within the database's bigint range."""
    if not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if 0 < number < 2**63 else None


@login_required
def run_estimate(request: HttpRequest, project_id: int) -> HttpResponse:
    """The confirm step before "Generate all": what the run will send, cost and take."""
    membership = membership_for(user=request.user, project_id=project_id)
    project = membership.project
    estimate = selectors.run_estimate(project=project, user=request.user)
    context = {
        "project": project,
        "membership": membership,
        "can_edit": membership.allows(Role.EDITOR),
        "estimate": estimate,
        "retry_percent": round(estimate.retry_rate * 100),
        "duration": duration_text(estimate.duration_s) if estimate.duration_s is not None else "—",
        "after_span": span(estimate.after_reset) if estimate.after_reset else "",
        "batch_cost": money(estimate.batch_cost),
        "budget_left": money(estimate.budget_left) if estimate.budget_left is not None else "",
    }
    return render(request, "generation/estimate.html", context)


@login_required
def project_status(request: HttpRequest, project_id: int) -> JsonResponse:
    """The same snapshot the socket sends on connect, for polling clients."""
    project = membership_for(user=request.user, project_id=project_id).project
    return JsonResponse(selectors.project_snapshot(project_id=project.pk))


@login_required
def version_image(
    request: HttpRequest, project_id: int, scene_id: int, version_id: int
) -> HttpResponse | FileResponse:
    project = membership_for(user=request.user, project_id=project_id).project
    version = get_object_or_404(SceneVersion, pk=version_id, scene_id=scene_id, scene__project=project)
    return send_image(Path(version.image.path), thumb="thumb" in request.GET)


@login_required
def scene_versions(request: HttpRequest, project_id: int, scene_id: int) -> JsonResponse:
    """A scene's images, newest first, for the page's viewer."""
    project = membership_for(user=request.user, project_id=project_id).project
    scene = get_object_or_404(Scene, pk=scene_id, project=project)
    versions = [
        {
            "number": v.number,
            "image": reverse("version_image", args=[project.pk, scene.pk, v.pk]),
            "current": v.image.name == scene.image.name,
            "provider": v.provider,
            "model": v.model,
            "created": v.created.isoformat(),
            "prompt": v.prompt,
            "stale": Scene.prompt_changed_since(v.prompt, scene.prompt),
        }
        for v in scene.versions.order_by("-number")
    ]
    title = f"Scene {scene.position}" + (f": {scene.title}" if scene.title else "")
    return JsonResponse({"scene": scene.pk, "title": title, "prompt": scene.prompt, "versions": versions})


@login_required
@require_POST
def version_make_current(
    request: HttpRequest, project_id: int, scene_id: int, version_id: int
) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    version = get_object_or_404(SceneVersion, pk=version_id, scene_id=scene_id, scene__project=project)
    scene_version_make_current(version=version)
    messages.success(request, f"Scene {version.scene.position} shows version {version.number} again.")
    if request.POST.get("next") == "grid":  # picked among the variations on the storyboard
        return redirect(f"{project.get_absolute_url()}#scene-{scene_id}")
    return redirect("scene_edit", project.pk, scene_id)


@login_required
def provider_keys(request: HttpRequest, project_id: int) -> HttpResponse:
    """The owners' page for the project's own provider keys: set, replace, remove; never shown back."""
    membership = membership_for(user=request.user, project_id=project_id, needs=Role.OWNER)
    project = membership.project
    offered = selectors.keyed_providers()
    form = ProviderKeyForm(request.POST or None, offered=offered)
    if request.method == "POST" and request.POST.get("remove"):
        name = request.POST["remove"]
        if provider_key_remove(project=project, provider=name, user=request.user):
            messages.success(request, f"Removed the project's {KEYED_PROVIDERS.get(name, name)}.")
        return redirect("provider_keys", project.pk)
    if request.method == "POST" and form.is_valid():
        try:
            key = provider_key_set(project=project, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error("secret" if exc.code == "secret" else "provider", exc)
        else:
            messages.success(request, f"Saved the project's {key.label} (…{key.hint}).")
            return redirect("provider_keys", project.pk)
    keys = project.provider_keys.select_related("created_by")
    context = {"project": project, "membership": membership, "form": form, "keys": keys}
    return render(request, "generation/provider_keys.html", context)
