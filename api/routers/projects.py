"""Projects, their members, the live status snapshot and the export ZIP."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.pagination import LimitOffsetPagination, paginate

from api.access import project_access, require_write, visible_projects
from api.errors import ApiError, field_error
from api.schemas import MemberIn, MemberOut, MemberPatch, ProjectIn, ProjectOut, ProjectPatch
from generation.selectors import project_snapshot
from projects import export, export_views, services
from projects.models import Membership, Role

router = Router(tags=["projects"])


@router.get("/projects", response=list[ProjectOut], url_name="project_list")
@paginate(LimitOffsetPagination)
def project_list(request: HttpRequest):
    return visible_projects(request).order_by("-updated", "pk")


@router.post("/projects", response={201: ProjectOut}, url_name="project_create")
def project_create(request: HttpRequest, payload: ProjectIn):
    require_write(request)
    token = getattr(request, "api_token", None)
    if token is not None and token.project_ids() is not None:
        raise ApiError(403, "forbidden", "A token limited to some projects cannot create projects.")
    return Status(
        201, services.project_create(title=payload.title, description=payload.description, user=request.user)
    )


@router.get("/projects/{int:project_id}", response=ProjectOut, url_name="project_get")
def project_get(request: HttpRequest, project_id: int):
    return project_access(request, project_id)


@router.patch("/projects/{int:project_id}", response=ProjectOut, url_name="project_update")
def project_update(request: HttpRequest, project_id: int, payload: ProjectPatch):
    from generation.providers import available

    project = project_access(request, project_id, needs=Role.OWNER)
    changes = payload.dict(exclude_unset=True)
    if changes.get("provider") and changes["provider"] not in available():
        raise field_error("provider", f"Unknown provider; choose one of {', '.join(available())}.")
    if "title" in changes and changes["title"] is None:
        raise field_error("title", "A project needs a title.")
    for field, value in changes.items():
        setattr(project, field, value if value is not None else "")
    project.save()
    return project


@router.delete("/projects/{int:project_id}", response={204: None}, url_name="project_delete")
def project_delete(request: HttpRequest, project_id: int):
    project_access(request, project_id, needs=Role.OWNER).delete()
    return Status(204, None)


@router.get("/projects/{int:project_id}/status", url_name="project_status")
def project_status(request: HttpRequest, project_id: int) -> dict:
    """The snapshot the live page starts from: every scene's status and the latest run with its counts."""
    project = project_access(request, project_id)
    return project_snapshot(project_id=project.pk)


@router.get("/projects/{int:project_id}/export.zip", url_name="project_export_zip")
def project_export_zip(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_access(request, project_id)
    try:
        archive = export.project_zip(project=project)
    except export.NothingToExport as exc:
        raise ApiError(409, "nothing_to_export", f"Nothing to download: {exc}") from exc
    # The page's streaming response: async chunks under ASGI, so a large ZIP never sits in memory.
    response = export_views._download(request, iter(archive.stream), "application/zip", archive)
    response["Content-Length"] = str(len(archive))
    return response


@router.get("/projects/{int:project_id}/members", response=list[MemberOut], url_name="member_list")
@paginate(LimitOffsetPagination)
def member_list(request: HttpRequest, project_id: int):
    project = project_access(request, project_id)
    return project.memberships.select_related("user").order_by("user__username")


@router.post("/projects/{int:project_id}/members", response={201: MemberOut}, url_name="member_add")
def member_add(request: HttpRequest, project_id: int, payload: MemberIn):
    project = project_access(request, project_id, needs=Role.OWNER)
    try:
        return Status(201, services.member_add(project=project, username=payload.username, role=payload.role))
    except ValidationError as exc:
        raise field_error("username", " ".join(exc.messages)) from exc


def _member(project, member_id: int) -> Membership:
    return get_object_or_404(Membership.objects.select_related("user"), pk=member_id, project=project)


@router.patch(
    "/projects/{int:project_id}/members/{int:member_id}", response=MemberOut, url_name="member_update"
)
def member_update(request: HttpRequest, project_id: int, member_id: int, payload: MemberPatch):
    membership = _member(project_access(request, project_id, needs=Role.OWNER), member_id)
    try:
        return services.member_set_role(membership=membership, role=payload.role)
    except ValidationError as exc:
        raise field_error("role", " ".join(exc.messages), status=409) from exc


@router.delete(
    "/projects/{int:project_id}/members/{int:member_id}", response={204: None}, url_name="member_remove"
)
def member_remove(request: HttpRequest, project_id: int, member_id: int):
    membership = _member(project_access(request, project_id, needs=Role.OWNER), member_id)
    try:
        services.member_remove(membership=membership)
    except ValidationError as exc:
        raise ApiError(409, "last_owner", " ".join(exc.messages)) from exc
    return Status(204, None)
