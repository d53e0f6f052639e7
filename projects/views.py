from __future__ import annotations

import json
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from generation.selectors import (
    current_reference_hashes,
    latest_run,
    layer_spans_processes,
    project_capabilities,
    project_snapshot,
    project_totals,
    references_changed,
    references_cut,
    scene_candidates,
)
from generation.services import missing_references
from projects import services
from projects.access import membership_for
from projects.forms import (
    ProjectForm,
    ProjectSettingsForm,
    SceneForm,
    StoryImportForm,
)
from projects.images import send_image
from projects.importers import StoryFormatError
from projects.models import NOTE_FIELDS, Character, Membership, Project, Role, Scene
from projects.pdf import PER_PAGE_CHOICES
from projects.wording import count_noun


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = (
        Project.objects.filter(memberships__user=request.user)
        .annotate(scene_count=Count("scenes", distinct=True))
        .order_by("-updated")
    )
    roles = dict(Membership.objects.filter(user=request.user).values_list("project_id", "role"))
    items = [(p, roles.get(p.pk)) for p in projects]
    return render(request, "projects/project_list.html", {"items": items, "form": ProjectForm()})


@login_required
def project_create(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = services.project_create(user=request.user, **form.cleaned_data)
        messages.success(request, f"Created “{project.title}”.")
        return redirect(project)
    return render(request, "projects/project_form.html", {"form": form})


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    membership = membership_for(user=request.user, project_id=project_id)
    project = membership.project
    grid = _grid(membership)
    scenes = grid["scenes"]
    context = {
        **grid,
        "membership": membership,
        "characters": project.characters.all(),
        "run": latest_run(project.pk),
        "missing": missing_references(scenes=scenes),
        "failed_count": sum(s.status == Scene.Status.FAILED for s in scenes),
        "snapshot": project_snapshot(project_id=project.pk),
        "pdf_per_page_choices": PER_PAGE_CHOICES,
        "live_config": {
            "ws": f"/ws/projects/{project.pk}/",
            "status": reverse("project_status", args=[project.pk]),
            "tiles": reverse("scene_tiles", args=[project.pk]),
            "can_edit": grid["can_edit"],
            # Events from another process (manage.py generate) cannot reach this one's sockets: poll.
            "poll_seconds": None if layer_spans_processes() else POLL_SECONDS,
        },
    }
    return render(request, "projects/project_detail.html", context)


POLL_SECONDS = 1.5


def _grid(membership: Membership, *, ids: list[int] | None = None) -> dict:
    """What the tiles template needs: the page and scene_tiles draw tiles from the same context."""
    project = membership.project
    # Ordered explicitly: an aggregate annotation drops Meta.ordering from the query.
    scenes = (
        project.scenes.with_image_prompt()
        .order_by("position")
        .prefetch_related(
            Prefetch(
                "characters",
                queryset=Character.objects.order_by("name").prefetch_related("extra_references"),
            )
        )
    )
    if ids is not None:
        scenes = scenes.filter(pk__in=ids)
    scenes = list(scenes)
    return {
        "project": project,
        "scenes": scenes,
        "can_edit": membership.allows(Role.EDITOR),
        # The studio's tile tools: each scene's variations, and references its provider would cut.
        "candidates": scene_candidates(project_id=project.pk),
        "references_cut": references_cut(scenes=scenes, capabilities=project_capabilities(project)),
    }


@login_required
def scene_tiles(request: HttpRequest, project_id: int) -> HttpResponse:
    """The grid's tiles as HTML, all of them or `?ids=3,5`: the one place tiles are drawn, for the page
    and for storyboard.js after an event (it never draws a tile itself)."""
    membership = membership_for(user=request.user, project_id=project_id)
    raw = request.GET.get("ids")
    ids = [int(part) for part in raw.split(",") if part.isascii() and part.isdigit()][:1000] if raw else None
    context = {**_grid(membership, ids=ids), "partial": ids is not None}
    response = render(request, "projects/_scene_tiles.html", context)
    response["X-Project-Totals"] = json.dumps(project_totals(project_id=project_id))
    response["Cache-Control"] = "no-store"
    return response


@login_required
def project_edit(request: HttpRequest, project_id: int) -> HttpResponse:
    membership = membership_for(user=request.user, project_id=project_id, needs=Role.OWNER)
    project = membership.project
    form = ProjectSettingsForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Project saved.")
        return redirect(project)
    context = {"form": form, "project": project, "membership": membership, "providers": form.statuses}
    return render(request, "projects/project_form.html", context)


@login_required
def project_delete(request: HttpRequest, project_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.OWNER).project
    if request.method == "POST":
        title = project.title
        project.delete()
        messages.success(request, f"Deleted “{title}”.")
        return redirect("project_list")
    return render(request, "projects/confirm_delete.html", {"project": project, "object": project})


@login_required
def scene_create(request: HttpRequest, project_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    form = SceneForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        try:
            scene = services.scene_create(
                project=project, prompt=form.cleaned_data["prompt"], title=form.cleaned_data["title"]
            )
            services.scene_notes_update(scene=scene, notes=form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if form.cleaned_data["characters"]:
                scene.characters.add(*form.cleaned_data["characters"])
            messages.success(request, f"Added scene {scene.position}.")
            return redirect(project)
    return render(request, "projects/scene_form.html", {"form": form, "project": project})


@login_required
def scene_edit(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    scene = get_object_or_404(Scene, pk=scene_id, project=project)
    form = SceneForm(request.POST or None, instance=scene, project=project)
    if request.method == "POST" and form.is_valid():
        notes = {name: form.cleaned_data.pop(name) for name in NOTE_FIELDS}
        try:
            services.scene_update(scene=scene, **form.cleaned_data)
            services.scene_notes_update(scene=scene, notes=notes)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Saved scene {scene.position}.")
        return redirect(project)
    suggested = services.scene_links_propose(scene=scene)
    versions = list(scene.versions.select_related("attempt"))
    current = current_reference_hashes(scene.characters.all())
    for version in versions:
        version.reference_changed = references_changed(version=version, current=current)
    context = {
        "form": form,
        "project": project,
        "scene": scene,
        "suggested": suggested,
        "versions": versions,
        "capabilities": project_capabilities(project),
    }
    return render(request, "projects/scene_form.html", context)


@login_required
def scene_delete(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse:
    """GET asks first (the button sits next to Save); POST deletes."""
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    scene = get_object_or_404(Scene, pk=scene_id, project=project)
    if request.method != "POST":
        return confirm_delete(
            request,
            project=project,
            what=f"scene {scene.position}",
            consequence="Its prompt, its images and all their versions are deleted; "
            "the scenes after it move up. This cannot be undone.",
            cancel=reverse("scene_edit", args=[project.pk, scene.pk]),
        )
    try:
        services.scene_delete(scene=scene)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Deleted scene {scene.position}; the scenes after it moved up.")
    return redirect(project)


def confirm_delete(
    request: HttpRequest, *, project: Project, what: str, consequence: str, cancel: str
) -> HttpResponse:
    context = {"project": project, "object": what, "consequence": consequence, "cancel_url": cancel}
    return render(request, "projects/confirm_delete.html", context)


@login_required
@require_POST
def scene_move(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    scene = get_object_or_404(Scene, pk=scene_id, project=project)
    try:
        target = int(request.POST.get("to", ""))
    except ValueError:
        messages.error(request, "Give the new position as a number.")
        return redirect(project)
    was = scene.position
    try:
        services.scene_move(scene=scene, to_position=target)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(project)
    messages.success(
        request, move_message(was=was, asked=target, now=scene.position, total=project.scenes.count())
    )
    return redirect(f"{project.get_absolute_url()}#scene-{scene.pk}")


def move_message(*, was: int, asked: int, now: int, total: int) -> str:
    """Say where the scene went, and why when that is not where it was asked to go (1..N clamps)."""
    where = f"position {now}" + (" (the last)" if now == total and total > 1 else "")
    where += " (the first)" if now == 1 and total > 1 else ""
    if now == was:
        return f"Scene {was} is already at {where}; nothing moved."
    clamped = f" There are only {count_noun(total, 'scene')}." if asked > total else ""
    return f"Moved scene {was} to {where}.{clamped}"


@login_required
@require_POST
def scenes_reorder(request: HttpRequest, project_id: int) -> JsonResponse:
    """The grid's drag and drop: the whole new order as scene ids, applied by scenes_reorder."""
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    try:
        ordered = [int(pk) for pk in request.POST.get("order", "").split(",") if pk.strip()]
        moved = int(request.POST.get("moved", "0"))
    except ValueError:
        return JsonResponse({"ok": False, "message": "The order must be scene ids."}, status=400)
    was = dict(project.scenes.values_list("pk", "position")).get(moved)
    try:
        services.scenes_reorder(project=project, ordered_ids=ordered)
    except ValidationError as exc:
        # Someone added or deleted a scene meanwhile: the page reloads to the true order.
        text = " ".join(exc.messages) + " The page shows the current order again."
        messages.error(request, text)
        return JsonResponse({"ok": False, "message": text}, status=409)
    text = "Saved the new order."
    if was is not None:
        text = move_message(
            was=was, asked=ordered.index(moved) + 1, now=ordered.index(moved) + 1, total=len(ordered)
        )
    messages.success(request, text)  # shown by the page the script reloads
    return JsonResponse({"ok": True, "message": text})


@login_required
def story_import(request: HttpRequest, project_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    form = StoryImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            outcome = services.story_import_outcome(
                project=project,
                text=data["text"],
                fmt=data["fmt"],
                filename=data["filename"],
                mode=data["mode"],
            )
        except StoryFormatError as exc:
            form.add_error(None, f"Nothing was imported. {exc}")
        except ValidationError as exc:
            form.add_error(None, f"Nothing was imported. {' '.join(exc.messages)}")
        else:
            messages.success(request, outcome.message())
            return redirect(project)
    return render(request, "projects/story_import.html", {"form": form, "project": project})


@login_required
def scene_image(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse | FileResponse:
    project = membership_for(user=request.user, project_id=project_id).project
    scene = get_object_or_404(Scene, pk=scene_id, project=project)
    if not scene.image:
        raise Http404("This scene has no image yet")
    return send_image(Path(scene.image.path), thumb="thumb" in request.GET)
