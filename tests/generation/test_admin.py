from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from generation.models import BatchRun, GenerationAttempt
from projects import services as project_services

pytestmark = pytest.mark.django_db


def retry(client, scenes):
    url = reverse("admin:projects_scene_changelist")
    data = {"action": "retry_selected", "_selected_action": [s.pk for s in scenes]}
    response = client.post(url, data, follow=True)
    return [str(m) for m in response.context["messages"]]


def test_the_admin_action_queues_a_run_for_the_selected_scenes(admin_client, story):
    project, scenes, _ = story
    notes = retry(admin_client, scenes[:2])
    assert notes == ["Queued 2 scenes for generation."]  # issue 14 (6): was "scene(s)"
    run = BatchRun.objects.get()
    assert set(run.scenes.all()) == set(scenes[:2]) and run.regenerate


def test_it_refuses_when_a_run_is_already_active(admin_client, story):
    project, scenes, _ = story
    BatchRun.objects.create(project=project, provider="sketch", status="running")
    notes = retry(admin_client, scenes[:1])
    assert len(notes) == 1 and "already active" in notes[0]


def test_it_refuses_when_a_character_reference_is_missing(admin_client, story):
    project, scenes, _ = story
    scenes[0].characters.add(project_services.character_save(project=project, name="Ram"))
    notes = retry(admin_client, scenes[:1])
    assert len(notes) == 1 and "need a reference image first: Ram" in notes[0]


@pytest.fixture
def staff_viewer(client, team):
    team.viewer.is_staff = True
    team.viewer.save()
    for codename in ["view_scene", "change_scene", "view_batchrun", "view_generationattempt"]:
        team.viewer.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(team.viewer)
    return client


def test_it_refuses_staff_without_the_editor_role(staff_viewer, story):
    project, scenes, _ = story
    notes = retry(staff_viewer, scenes[:1])
    assert len(notes) == 1 and "not an editor or owner" in notes[0]
    assert not BatchRun.objects.exists()


def test_staff_see_only_their_projects_in_the_admin(staff_viewer, story, make_user):
    project, scenes, _ = story
    other = project_services.project_create(title="Secret", user=make_user("zed"))
    project_services.scene_create(project=other, prompt="hidden scene")
    response = staff_viewer.get(reverse("admin:projects_scene_changelist"))
    assert response.context["cl"].result_count == len(scenes)


@pytest.mark.parametrize(
    "name",
    [
        "admin:generation_batchrun_changelist",
        "admin:generation_generationattempt_changelist",
        "admin:generation_sceneversion_changelist",
    ],
)
def test_run_and_attempt_admin_pages_load_with_filters(admin_client, story, name):
    project, scenes, _ = story
    run = BatchRun.objects.create(project=project, provider="openai", status="completed")
    GenerationAttempt.objects.create(
        run=run,
        scene=scenes[0],
        number=1,
        provider="openai",
        status="failed",
        error_kind="quota",
        http_status=429,
        started=run.created,
    )
    assert admin_client.get(reverse(name)).status_code == 200
    if "attempt" in name:
        response = admin_client.get(
            reverse(name), {"error_kind": "quota", "provider": "openai", "http_status": "429"}
        )
        assert response.context["cl"].result_count == 1
        assert "openai" in response.content.decode()


def test_the_scene_admin_shows_its_attempts_inline(admin_client, story):
    project, scenes, _ = story
    run = BatchRun.objects.create(project=project, provider="gemini", status="completed")
    GenerationAttempt.objects.create(
        run=run, scene=scenes[0], number=1, provider="gemini", status="succeeded", started=run.created
    )
    body = admin_client.get(reverse("admin:projects_scene_change", args=[scenes[0].pk])).content.decode()
    assert "gemini" in body and "succeeded" in body.lower()
