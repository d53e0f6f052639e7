"""Pages and actions of the studio's storyboard tools: inline notes, seed lock, and (in later modules)
the PDF, invitations and the character library."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from generation.services import scene_seed_lock
from projects import pdf, services
from projects.access import membership_for
from projects.export import NothingToExport, content_disposition
from projects.forms import SceneNotesForm
from projects.images import harden_file_response
from projects.models import Role, Scene


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
        scene_seed_lock(scene=scene, lock=lock)
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
