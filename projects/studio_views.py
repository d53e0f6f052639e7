"""Pages and actions of the studio's storyboard tools: inline notes, seed lock, and (in later modules)
the PDF, invitations and the character library."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from generation.services import RunRefused, run_start, scene_seed_lock
from projects import characters, invitations, pdf, services, zip_import
from projects.access import membership_for, projects_for
from projects.export import NothingToExport, content_disposition
from projects.forms import (
    ExtraReferenceForm,
    InvitationForm,
    InvitationSignupForm,
    SceneNotesForm,
    StudioZipImportForm,
)
from projects.images import harden_file_response
from projects.importers import StoryFormatError
from projects.models import Character, CharacterReference, Invitation, Role, Scene
from projects.views import send_image


@login_required
@require_POST
def scene_notes(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    scene = get_object_or_404(Scene, pk=scene_id, project=project)
    form = SceneNotesForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())
        messages.error(request, f"Scene {scene.position}: notes not saved ({errors}).")
    else:
        try:
            services.scene_notes_update(scene=scene, notes=form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Saved the notes of scene {scene.position}.")
    return redirect(f"{project.get_absolute_url()}#scene-{scene.pk}")


@login_required
@require_POST
def scene_seed(request: HttpRequest, project_id: int, scene_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    scene = get_object_or_404(Scene, pk=scene_id, project=project)
    lock = request.POST.get("lock") == "1"
    try:
        scene = scene_seed_lock(scene=scene, lock=lock)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        text = f"Seed {scene.locked_seed} kept for scene {scene.position}." if lock else "Seed unlocked."
        messages.success(request, text)
    return redirect("scene_edit", project.pk, scene.pk)


@login_required
def project_pdf(request: HttpRequest, project_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id).project
    try:
        per_page = int(request.GET.get("per_page", pdf.DEFAULT_PER_PAGE))
        document = pdf.project_pdf(project=project, per_page=per_page)
    except ValueError:
        choices = ", ".join(map(str, pdf.PER_PAGE_CHOICES))
        return HttpResponseBadRequest(f"Panels per page: one of {choices}.", content_type="text/plain")
    except NothingToExport as exc:
        messages.info(request, f"No PDF: {exc}")
        return redirect(project)
    # FileResponse streams the spooled file a block at a time and closes it when done.
    response = FileResponse(document.file, content_type="application/pdf")
    response["Content-Length"] = str(document.size)
    response["Content-Disposition"] = content_disposition(document.filename, document.ascii_filename)
    response["Cache-Control"] = "private, no-store"
    return harden_file_response(response)


@login_required
@require_POST
def character_reference_add(request: HttpRequest, project_id: int, character_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    character = get_object_or_404(Character, pk=character_id, project=project)
    form = ExtraReferenceForm(request.POST, request.FILES)
    if form.is_valid():
        characters.character_reference_add(
            character=character, image=form.cleaned_data["image"], label=form.cleaned_data["label"]
        )
        messages.success(request, f"Added a reference view of {character.name}.")
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("character_edit", project.pk, character.pk)


@login_required
@require_POST
def character_reference_delete(
    request: HttpRequest, project_id: int, character_id: int, reference_id: int
) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    extra = get_object_or_404(
        CharacterReference, pk=reference_id, character_id=character_id, character__project=project
    )
    characters.character_reference_delete(reference=extra)
    messages.success(request, "Removed the reference view.")
    return redirect("character_edit", project.pk, character_id)


@login_required
def character_extra_reference(
    request: HttpRequest, project_id: int, character_id: int, reference_id: int
) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id).project
    extra = get_object_or_404(
        CharacterReference, pk=reference_id, character_id=character_id, character__project=project
    )
    return send_image(Path(extra.image.path), thumb="thumb" in request.GET)


@login_required
def character_library(request: HttpRequest, project_id: int) -> HttpResponse:
    """Characters of the user's other projects, to copy into this one with their references."""
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    if request.method == "POST":
        source_id = _number(request.POST.get("source", ""))
        if source_id is None:
            return HttpResponseBadRequest("“source” must be a project number.", content_type="text/plain")
        # Reading from the source needs membership there too: a viewer may copy, a stranger gets 404.
        source = membership_for(user=request.user, project_id=source_id).project
        ids = [n for n in (_number(v) for v in request.POST.getlist("character")) if n is not None]
        chosen = source.characters.filter(pk__in=ids).prefetch_related("extra_references")
        done = characters.characters_copy(characters=chosen, project=project)
        if done.created:
            messages.success(request, f"Copied {', '.join(c.name for c in done.created)}.")
        if done.skipped:
            messages.info(request, f"Already in this project, not copied: {', '.join(done.skipped)}.")
        return redirect("character_list", project.pk)
    others = projects_for(user=request.user).exclude(pk=project.pk).order_by("title")
    sources = [(other, list(other.characters.order_by("name"))) for other in others]
    context = {"project": project, "sources": [(p, cs) for p, cs in sources if cs]}
    return render(request, "projects/character_library.html", context)


def _number(value: str) -> int | None:
    if not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if 0 < number < 2**63 else None


@login_required
def invitation_list(request: HttpRequest, project_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.OWNER).project
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        invitation = invitations.invitation_create(
            project=project,
            role=data["role"],
            email=data["email"] or "",
            days=data["days"],
            user=request.user,
        )
        url = request.build_absolute_uri(invitations.invitation_path(invitation))
        mailed = invitations.invitation_send(invitation=invitation, url=url)
        messages.success(
            request, "Invitation created" + (f" and mailed to {invitation.email}." if mailed else ".")
        )
        return redirect("invitation_list", project.pk)
    items = [
        (i, request.build_absolute_uri(invitations.invitation_path(i))) for i in project.invitations.all()
    ]
    context = {"project": project, "form": form, "items": items}
    return render(request, "projects/invitation_list.html", context)


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, project_id: int, invitation_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.OWNER).project
    invitation = get_object_or_404(Invitation, pk=invitation_id, project=project)
    invitations.invitation_revoke(invitation=invitation)
    messages.success(request, "Invitation revoked: its link no longer works.")
    return redirect("invitation_list", project.pk)


def invitation_open(request: HttpRequest, token: str) -> HttpResponse:
    """The invitation link: sign up, or (signed in) accept. Anyone may open it; only its token admits."""
    invitation = invitations.open_invitation(token)
    if invitation is None:
        return render(request, "projects/invitation_open.html", {"closed": True}, status=404)
    signed_in = request.user.is_authenticated
    form = None if signed_in else InvitationSignupForm(request.POST or None)
    if request.method == "POST":
        try:
            if signed_in:
                invitations.invitation_accept(invitation=invitation, user=request.user)
            elif form.is_valid():
                user = invitations.invitation_signup(
                    invitation=invitation,
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"],
                    email=form.cleaned_data.get("email") or "",
                )
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                raise _FormInvalid
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        except _FormInvalid:
            pass
        else:
            messages.success(request, f"Welcome to “{invitation.project.title}”.")
            return redirect(invitation.project)
    context = {"invitation": invitation, "form": form, "closed": False}
    return render(request, "projects/invitation_open.html", context)


class _FormInvalid(Exception):
    """The sign-up form has errors: show it again with them."""


BULK_ACTIONS = ("regenerate", "retry", "delete", "move")


@login_required
@require_POST
def scenes_bulk(request: HttpRequest, project_id: int) -> HttpResponse:
    """The grid's multi-select: regenerate, retry, delete or move the selected scenes together."""
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    action = request.POST.get("bulk_action", "")
    ids = [n for n in (_number(v) for v in request.POST.getlist("scenes")) if n is not None]
    chosen = list(project.scenes.filter(pk__in=ids).order_by("position"))
    if action not in BULK_ACTIONS:
        return HttpResponseBadRequest("Unknown action.", content_type="text/plain")
    if not chosen:
        messages.error(request, "Select at least one scene first.")
        return redirect(project)
    if action == "delete" and request.POST.get("confirm") != "1":
        # The one confirmation for the whole selection.
        return render(request, "projects/scenes_bulk_delete.html", {"project": project, "scenes": chosen})
    try:
        text = _bulk(project, action, chosen, request)
    except (ValidationError, RunRefused) as exc:
        messages.error(request, getattr(exc, "message", None) or " ".join(exc.messages))
    else:
        messages.success(request, text)
    return redirect(project)


def _bulk(project, action: str, chosen: list[Scene], request: HttpRequest) -> str:
    ids = [scene.pk for scene in chosen]
    if action == "delete":
        count = services.scenes_delete(project=project, scene_ids=ids)
        return f"Deleted {count} scenes; the others moved up."
    if action == "move":
        target = _number(request.POST.get("to", "")) or 1
        services.scenes_move(project=project, scene_ids=ids, to_position=target)
        return f"Moved {len(ids)} scenes to position {target}."
    if action == "retry":
        ids = [scene.pk for scene in chosen if scene.status == Scene.Status.FAILED]
        if not ids:
            raise ValidationError("None of the selected scenes has failed.")
    _, created = run_start(
        project=project, user=request.user, scene_ids=ids, regenerate=action == "regenerate"
    )
    return f"Generating {len(ids)} scenes." if created else "A run is already active; showing it."


@login_required
def studio_zip_import(request: HttpRequest, project_id: int) -> HttpResponse:
    project = membership_for(user=request.user, project_id=project_id, needs=Role.EDITOR).project
    form = StudioZipImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            scenes = zip_import.studio_zip_import(
                project=project, upload=form.cleaned_data["file"], mode=form.cleaned_data["mode"]
            )
        except (ValidationError, StoryFormatError) as exc:
            form.add_error(None, " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
        else:
            with_images = sum(1 for scene in scenes if scene.image)
            messages.success(request, f"Imported {len(scenes)} scenes ({with_images} with images).")
            return redirect(project)
    return render(request, "projects/studio_zip_import.html", {"form": form, "project": project})
