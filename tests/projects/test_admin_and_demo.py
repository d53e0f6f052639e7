from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from projects.models import Character, Project, Scene


@pytest.fixture
def admin_client_with_data(admin_client, team, scenes):
    return admin_client


@pytest.mark.parametrize(
    "name",
    [
        "admin:projects_project_changelist",
        "admin:projects_scene_changelist",
        "admin:projects_character_changelist",
    ],
)
def test_admin_lists_load(admin_client_with_data, name):
    assert admin_client_with_data.get(reverse(name)).status_code == 200


def test_admin_scene_filters_and_search_work(admin_client_with_data, team):
    url = reverse("admin:projects_scene_changelist")
    response = admin_client_with_data.get(url, {"status__exact": "pending", "q": "prompt 3"})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


def test_admin_project_page_has_the_membership_inline(admin_client_with_data, team):
    response = admin_client_with_data.get(reverse("admin:projects_project_change", args=[team.project.pk]))
    assert "olivia" in response.content.decode() and response.status_code == 200


def test_seed_demo_creates_the_folk_tale_once(db, settings):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")
    project = Project.objects.get()
    assert project.scenes.count() == 20
    assert Character.objects.filter(project=project).count() == 3
    assert [s.position for s in project.scenes.filter(prompt="")] == [7, 14]
    for character in project.characters.all():
        assert character.scenes.exists(), f"{character.name} appears in no scene"
    assert list(project.scenes.values_list("position", flat=True)) == list(range(1, 21))
    assert Scene.objects.filter(project=project, characters__name="Gopal Bhar").count() >= 5


def test_seed_demo_refuses_production(db, settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo")
