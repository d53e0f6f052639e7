"""The one access helper every page, download, consumer, admin form and service goes through."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from projects.models import ROLE_RANK, Membership, Project, Role


def membership_for(*, user, project_id: int, needs: str = Role.VIEWER) -> Membership:
    """The user's membership of the project, its project loaded.

    Http404 for anonymous users and non-members (a project they cannot see does not exist for them),
    PermissionDenied for a member whose role is below `needs`.
    """
    membership = None
    if user is not None and user.is_authenticated:
        membership = (
            Membership.objects.select_related("project").filter(project_id=project_id, user=user).first()
        )
    if membership is None:
        raise Http404("No such project")
    if not membership.allows(needs):
        raise PermissionDenied(f"Your role ({membership.role}) cannot do this.")
    return membership


def has_role(*, user, project_id: int, needs: str = Role.VIEWER) -> bool:
    """membership_for as a yes or no, for sockets and the admin, which answer in their own way."""
    try:
        membership_for(user=user, project_id=project_id, needs=needs)
    except (Http404, PermissionDenied):
        return False
    return True


def projects_for(*, user, needs: str = Role.VIEWER) -> QuerySet[Project]:
    """Every project in which the user has at least the role `needs`: the choices the admin offers."""
    if user is None or not user.is_authenticated:
        return Project.objects.none()
    roles = [role for role, rank in ROLE_RANK.items() if rank >= ROLE_RANK[needs]]
    return Project.objects.filter(memberships__user=user, memberships__role__in=roles).distinct()


def admin_allows(*, user, project_id: int, needs: str = Role.VIEWER) -> bool:
    """The admin's rule: superusers may do anything; other staff what their role in the project allows."""
    return bool(user.is_superuser) or has_role(user=user, project_id=project_id, needs=needs)


def admin_projects(*, user, needs: str = Role.VIEWER) -> QuerySet[Project]:
    """The projects the admin lets the user act on with the role `needs`."""
    return Project.objects.all() if user.is_superuser else projects_for(user=user, needs=needs)
