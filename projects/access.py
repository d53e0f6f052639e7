"""The one access helper every project view and consumer goes through."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from projects.models import Membership, Project, Role


def project_for_user(user, project_id: int, *, needs: str = Role.VIEWER) -> tuple[Project, Membership]:
    """The project and the user's membership; 404 for non-members (no existence leak), 403 for a weak role."""
    if not user.is_authenticated:
        raise Http404("No such project")
    membership = Membership.objects.select_related("project").filter(project_id=project_id, user=user).first()
    if membership is None:
        raise Http404("No such project")
    if not membership.allows(needs):
        raise PermissionDenied(f"Your role ({membership.role}) cannot do this.")
    return membership.project, membership
