"""Character pages of a project: the list, the form, delete, links found in prompts, the reference image."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from projects import services
from projects.access import membership_for
from projects.forms import CharacterForm
from projects.images import send_image
from projects.models import Character, Role
from projects.views import confirm_delete
from projects.wording import count_noun


@login_required
def characters_link(request: HttpRequest, project_id: int) -> HttpResponse:
    """GET proposes the links found in the prompts; POST adds the ones confirmed."""
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    if request.method == "POST":
        added = services.project_links_apply(project=project, pairs=_pairs(request.POST.getlist("link")))
        if added:
            messages.success(request, f"Linked {count_noun(added, 'character appearance')}.")
        else:
            messages.info(request, "No links were added.")
        return redirect(project)
    proposals = services.project_links_propose(project=project)
    count = sum(len(found) for _, found in proposals)
    context = {"project": project, "proposals": proposals, "count": count}
    return render(request, "projects/link_characters.html", context)


def _pairs(values: list[str]) -> list[tuple[int, int]]:
    """ "scene:character" ids from the proposal form; anything else is ignored."""
    pairs = []
    for value in values:
        scene, _, character = value.partition(":")
        if scene.isdigit() and character.isdigit():
            pairs.append((int(scene), int(character)))
    return pairs


@login_required
def character_list(request: HttpRequest, project_id: int) -> HttpResponse:
    membership = membership_for(user=request.user, project_id=project_id)
    project = membership.project
    characters = project.characters.annotate(scene_count=Count("scenes"))
    context = {
        "project": project,
        "membership": membership,
        "characters": characters,
        "can_edit": membership.allows(Role.EDITOR),
    }
    return render(request, "projects/character_list.html", context)


@login_required
def character_edit(request: HttpRequest, project_id: int, character_id: int | None = None) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    character = get_object_or_404(Character, pk=character_id, project=project) if character_id else None
    form = CharacterForm(request.POST or None, request.FILES or None, instance=character, project=project)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        saved = services.character_save(
            project=project,
            character=character,
            name=data["name"],
            aliases=data["aliases"],
            description=data["description"],
            reference=request.FILES.get("reference"),
        )
        messages.success(request, f"Saved {saved.name}.")
        return redirect("character_list", project.pk)
    return render(
        request, "projects/character_form.html", {"form": form, "project": project, "character": character}
    )


@login_required
def character_delete(request: HttpRequest, project_id: int, character_id: int) -> HttpResponse:
    """GET asks first; POST deletes."""
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    character = get_object_or_404(Character, pk=character_id, project=project)
    if request.method != "POST":
        scenes = character.scenes.count()
        return confirm_delete(
            request,
            project=project,
            what=character.name,
            consequence=f"{character.name} and the reference image are deleted and unlinked from "
            f"{count_noun(scenes, 'scene')}; the scenes stay. This cannot be undone.",
            cancel=reverse("character_edit", args=[project.pk, character.pk]),
        )
    services.character_delete(character=character)
    messages.success(request, f"Deleted {character.name}.")
    return redirect("character_list", project.pk)


@login_required
def character_reference(
    request: HttpRequest, project_id: int, character_id: int
) -> HttpResponse | FileResponse:
    project = membership_for(user=request.user, project_id=project_id).project
    character = get_object_or_404(Character, pk=character_id, project=project)
    if not character.reference:
        raise Http404("This character has no reference image")
    return send_image(Path(character.reference.path), thumb="thumb" in request.GET)
