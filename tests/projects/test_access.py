"""The one access helper: who is a member, with which role, and what the admin lets staff act on."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from projects import services
from projects.access import admin_allows, admin_projects, has_role, membership_for, projects_for
from projects.models import Project, Role


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
def test_non_members_get_404_whatever_the_role_asked(team, who):
    user = AnonymousUser() if who == "anonymous" else team.outsider
    for needs in Role.values:
        with pytest.raises(Http404):
            membership_for(user=user, project_id=team.project.pk, needs=needs)
        assert not has_role(user=user, project_id=team.project.pk, needs=needs)


@pytest.mark.parametrize(
    ("who", "needs", "allowed"),
    [
        ("viewer", Role.VIEWER, True),
        ("viewer", Role.EDITOR, False),
        ("editor", Role.EDITOR, True),
        ("editor", Role.OWNER, False),
        ("owner", Role.OWNER, True),
    ],
)
def test_members_get_their_membership_or_403_for_a_weak_role(
    team, django_assert_num_queries, who, needs, allowed
):
    user = team.user(who)
    assert has_role(user=user, project_id=team.project.pk, needs=needs) is allowed
    if not allowed:
        with pytest.raises(PermissionDenied):
            membership_for(user=user, project_id=team.project.pk, needs=needs)
        return
    with django_assert_num_queries(1):  # the project comes with the membership
        membership = membership_for(user=user, project_id=team.project.pk, needs=needs)
        assert membership.user_id == user.pk and membership.project.title == "The Tale"


def test_a_membership_of_another_project_is_not_one_of_this_project(team, make_user):
    other = services.project_create(title="Other", user=team.viewer)
    with pytest.raises(PermissionDenied):
        membership_for(user=team.viewer, project_id=team.project.pk, needs=Role.OWNER)
    assert membership_for(user=team.viewer, project_id=other.pk, needs=Role.OWNER).project == other


def test_projects_for_lists_the_projects_where_the_role_is_enough(team):
    other = services.project_create(title="Other", user=team.viewer)
    assert set(projects_for(user=team.viewer)) == {team.project, other}
    assert list(projects_for(user=team.viewer, needs=Role.EDITOR)) == [other]
    assert not projects_for(user=AnonymousUser()).exists()


def test_the_admin_lets_superusers_act_on_every_project_and_staff_as_their_role_allows(team, admin_user):
    other = services.project_create(title="Other", user=team.owner)
    assert admin_allows(user=admin_user, project_id=other.pk, needs=Role.OWNER)
    assert set(admin_projects(user=admin_user, needs=Role.OWNER)) == set(Project.objects.all())
    assert not admin_allows(user=team.editor, project_id=team.project.pk, needs=Role.OWNER)
    assert admin_allows(user=team.editor, project_id=team.project.pk, needs=Role.EDITOR)
    assert list(admin_projects(user=team.editor, needs=Role.EDITOR)) == [team.project]
