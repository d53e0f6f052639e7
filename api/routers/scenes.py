"""Scenes: list, create, update, delete, move, reorder, import a story; their image, attempts, versions."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.pagination import LimitOffsetPagination, paginate

from api.access import project_access
from api.errors import field_error
from api.schemas import (
    AttemptOut,
    ImportIn,
    ImportOut,
    MoveIn,
    ReorderIn,
    SceneIn,
    SceneOut,
    ScenePatch,
    VersionOut,
)
from generation.models import GenerationAttempt, SceneVersion
from generation.services import scene_version_make_current
from projects import services
from projects.models import Character, Project, Role, Scene
from projects.views import send_image

router = Router(tags=["scenes"])
SCENE = "/projects/{int:project_id}/scenes/{int:scene_id}"


def _scenes(project: Project):
    return project.scenes.prefetch_related(Prefetch("characters", queryset=Character.objects.only("pk")))


def _scene(project: Project, scene_id: int) -> Scene:
    return get_object_or_404(_scenes(project), pk=scene_id)


def _characters(project: Project, ids: list[int]) -> list[Character]:
    """The project's characters with these ids; an id of another project is named as invalid."""
    found = list(project.characters.filter(pk__in=ids))
    unknown = sorted(set(ids) - {c.pk for c in found})
    if unknown:
        raise field_error("character_ids", f"No such character in this project: {unknown}.")
    return found


@router.get("/projects/{int:project_id}/scenes", response=list[SceneOut], url_name="scene_list")
@paginate(LimitOffsetPagination)
def scene_list(request: HttpRequest, project_id: int):
    return _scenes(project_access(request, project_id)).order_by("position")


@router.post("/projects/{int:project_id}/scenes", response={201: SceneOut}, url_name="scene_create")
def scene_create(request: HttpRequest, project_id: int, payload: SceneIn):
    project = project_access(request, project_id, needs=Role.EDITOR)
    characters = _characters(project, payload.character_ids) if payload.character_ids else []
    scene = services.scene_create(
        project=project, prompt=payload.prompt, title=payload.title, position=payload.position
    )
    scene.characters.add(*characters)
    return Status(201, _scene(project, scene.pk))


@router.get(SCENE, response=SceneOut, url_name="scene_get")
def scene_get(request: HttpRequest, project_id: int, scene_id: int):
    return _scene(project_access(request, project_id), scene_id)


@router.patch(SCENE, response=SceneOut, url_name="scene_update")
def scene_update(request: HttpRequest, project_id: int, scene_id: int, payload: ScenePatch):
    project = project_access(request, project_id, needs=Role.EDITOR)
    scene = _scene(project, scene_id)
    characters = _characters(project, payload.character_ids) if payload.character_ids is not None else None
    services.scene_update(
        scene=scene,
        prompt=scene.prompt if payload.prompt is None else payload.prompt,
        title=scene.title if payload.title is None else payload.title,
        characters=characters,
    )
    return _scene(project, scene.pk)


@router.delete(SCENE, response={204: None}, url_name="scene_delete")
def scene_delete(request: HttpRequest, project_id: int, scene_id: int):
    project = project_access(request, project_id, needs=Role.EDITOR)
    services.scene_delete(scene=_scene(project, scene_id))
    return Status(204, None)


@router.post(SCENE + "/move", response=SceneOut, url_name="scene_move")
def scene_move(request: HttpRequest, project_id: int, scene_id: int, payload: MoveIn):
    project = project_access(request, project_id, needs=Role.EDITOR)
    services.scene_move(scene=_scene(project, scene_id), to_position=payload.position)
    return _scene(project, scene_id)


@router.post("/projects/{int:project_id}/scenes/reorder", response=list[SceneOut], url_name="scene_reorder")
def scene_reorder(request: HttpRequest, project_id: int, payload: ReorderIn):
    project = project_access(request, project_id, needs=Role.EDITOR)
    try:
        services.scenes_reorder(project=project, ordered_ids=payload.scene_ids)
    except ValidationError as exc:
        raise field_error("scene_ids", " ".join(exc.messages)) from exc
    return list(_scenes(project).order_by("position"))


@router.post("/projects/{int:project_id}/import", response={201: ImportOut}, url_name="story_import")
def story_import(request: HttpRequest, project_id: int, payload: ImportIn):
    """Plain text, numbered lines or `Scene N:` headings, CSV with a prompt column, or a JSON list; all
    or nothing: a malformed story changes nothing and the error says which line is wrong."""
    project = project_access(request, project_id, needs=Role.EDITOR)
    scenes = services.story_import(
        project=project, text=payload.text, fmt=payload.format, filename=payload.filename, mode=payload.mode
    )
    created = list(_scenes(project).filter(pk__in=[s.pk for s in scenes]).order_by("position"))
    return Status(201, {"imported": len(created), "scenes": created})


@router.get(SCENE + "/image", url_name="scene_image")
def scene_image(request: HttpRequest, project_id: int, scene_id: int, thumb: bool = False):
    scene = _scene(project_access(request, project_id), scene_id)
    if not scene.image:
        raise Http404("This scene has no image yet")
    return send_image(Path(scene.image.path), thumb=thumb)


@router.get(SCENE + "/attempts", response=list[AttemptOut], url_name="scene_attempts")
@paginate(LimitOffsetPagination)
def scene_attempts(request: HttpRequest, project_id: int, scene_id: int):
    scene = _scene(project_access(request, project_id), scene_id)
    return GenerationAttempt.objects.filter(scene=scene).order_by("started", "pk")


@router.get(SCENE + "/versions", response=list[VersionOut], url_name="scene_versions")
@paginate(LimitOffsetPagination)
def scene_versions(request: HttpRequest, project_id: int, scene_id: int):
    scene = _scene(project_access(request, project_id), scene_id)
    return SceneVersion.objects.filter(scene=scene).select_related("scene").order_by("-number")


@router.post(SCENE + "/versions/{int:version_id}/current", response=SceneOut, url_name="version_current")
def version_make_current(request: HttpRequest, project_id: int, scene_id: int, version_id: int):
    project = project_access(request, project_id, needs=Role.EDITOR)
    version = get_object_or_404(SceneVersion, pk=version_id, scene_id=scene_id, scene__project=project)
    scene_version_make_current(version=version)
    return _scene(project, scene_id)
