"""The API's one way into a project: the token's own limits, then the project's one access helper."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from projects.access import membership_for
from projects.models import Membership, Project, Role


def _membership(user, project_id: int, needs: str) -> tuple[Project, Membership]:
    # The only call into projects' access helper: a rename there is a one-line change here.
    membership = membership_for(user=user, project_id=project_id, needs=needs)
    return membership.project, membership


def require_write(request: HttpRequest) -> None:
    token = getattr(request, "api_token", None)
    if token is not None and token.read_only:
        raise PermissionDenied("This token is read-only.")


def project_access(request: HttpRequest, project_id: int, *, needs: str = Role.VIEWER) -> Project:
    """The project, for a member whose role allows `needs`; 404 for non-members and for projects the
    token is not limited to (no existence leak either way), 403 for a weak role or a read-only token."""
    token = getattr(request, "api_token", None)
    if token is not None and not token.allows_project(project_id):
        raise Http404("No such project")
    if needs != Role.VIEWER:
        require_write(request)
    project, _ = _membership(request.user, project_id, needs)
    return project


def visible_projects(request: HttpRequest):
    """The projects this request may list: the user's, narrowed to the token's projects when it has some."""
    projects = Project.objects.filter(memberships__user=request.user)
    token = getattr(request, "api_token", None)
    ids = token.project_ids() if token is not None else None
    return projects if ids is None else projects.filter(pk__in=ids)
