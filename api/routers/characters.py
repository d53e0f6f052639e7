"""Characters: list, create, update, delete, and upload a reference image."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import File, Router, Status, UploadedFile
from ninja.pagination import LimitOffsetPagination, paginate

from api.access import project_access
from api.errors import field_error
from api.schemas import CharacterIn, CharacterOut, CharacterPatch
from projects import services
from projects.images import validate_reference_image
from projects.models import Character, Project, Role
from projects.views import send_image

router = Router(tags=["characters"])
CHARACTER = "/projects/{int:project_id}/characters/{int:character_id}"


def _character(project: Project, character_id: int) -> Character:
    return get_object_or_404(Character, pk=character_id, project=project)


def _check_name(project: Project, name: str, *, exclude: int | None = None) -> str:
    # The page form's rule (CharacterForm.clean_name), so both refuse the same names.
    name = name.strip()
    if Character.objects.filter(project=project, name__iexact=name).exclude(pk=exclude).exists():
        raise field_error("name", "This project already has a character with that name.", status=409)
    return name


@router.get("/projects/{int:project_id}/characters", response=list[CharacterOut], url_name="character_list")
@paginate(LimitOffsetPagination)
def character_list(request: HttpRequest, project_id: int):
    return project_access(request, project_id).characters.order_by("name")


@router.post(
    "/projects/{int:project_id}/characters", response={201: CharacterOut}, url_name="character_create"
)
def character_create(request: HttpRequest, project_id: int, payload: CharacterIn):
    project = project_access(request, project_id, needs=Role.EDITOR)
    character = services.character_save(
        project=project,
        name=_check_name(project, payload.name),
        aliases=payload.aliases,
        description=payload.description,
    )
    return Status(201, character)


@router.get(CHARACTER, response=CharacterOut, url_name="character_get")
def character_get(request: HttpRequest, project_id: int, character_id: int):
    return _character(project_access(request, project_id), character_id)


@router.patch(CHARACTER, response=CharacterOut, url_name="character_update")
def character_update(request: HttpRequest, project_id: int, character_id: int, payload: CharacterPatch):
    project = project_access(request, project_id, needs=Role.EDITOR)
    character = _character(project, character_id)
    name = (
        character.name if payload.name is None else _check_name(project, payload.name, exclude=character.pk)
    )
    return services.character_save(
        project=project,
        character=character,
        name=name,
        aliases=character.aliases if payload.aliases is None else payload.aliases,
        description=character.description if payload.description is None else payload.description,
    )


@router.delete(CHARACTER, response={204: None}, url_name="character_delete")
def character_delete(request: HttpRequest, project_id: int, character_id: int):
    project = project_access(request, project_id, needs=Role.EDITOR)
    _character(project, character_id).delete()
    return Status(204, None)


@router.post(CHARACTER + "/reference", response=CharacterOut, url_name="character_reference_upload")
def character_reference_upload(
    request: HttpRequest, project_id: int, character_id: int, reference: File[UploadedFile]
):
    """Multipart upload (field `reference`): a PNG, JPEG, WebP or GIF within the studio's limits."""
    project = project_access(request, project_id, needs=Role.EDITOR)
    character = _character(project, character_id)
    try:
        validate_reference_image(reference)
    except ValidationError as exc:
        raise field_error("reference", " ".join(exc.messages)) from exc
    return services.character_save(
        project=project,
        character=character,
        name=character.name,
        aliases=character.aliases,
        description=character.description,
        reference=reference,
    )


@router.get(CHARACTER + "/reference", url_name="character_reference")
def character_reference(request: HttpRequest, project_id: int, character_id: int, thumb: bool = False):
    character = _character(project_access(request, project_id), character_id)
    if not character.reference:
        raise Http404("This character has no reference image")
    return send_image(Path(character.reference.path), thumb=thumb)
