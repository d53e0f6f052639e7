from __future__ import annotations

import re

import pytest
from django.urls import reverse

from generation.models import BatchRun
from projects import services as project_services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("who", "status"), [("outsider", 404), ("viewer", 200), ("editor", 200), ("owner", 200)]
)
def test_the_status_endpoint_checks_membership(client, story, team, who, status):
    project, *_ = story
    client.force_login(team.user(who))
    response = client.get(reverse("project_status", args=[project.pk]))
    assert response.status_code == status
    if status == 200:
        assert [s["position"] for s in response.json()["scenes"]] == [1, 2, 3, 4, 5, 6]


def test_the_status_endpoint_redirects_anonymous_users(client, story):
    project, *_ = story
    assert client.get(reverse("project_status", args=[project.pk])).status_code == 302


@pytest.mark.parametrize(
    ("who", "status", "runs"), [("outsider", 404, 0), ("viewer", 403, 0), ("editor", 302, 1)]
)
def test_starting_from_the_page_needs_the_editor_role(client, story, team, who, status, runs):
    project, *_ = story
    client.force_login(team.user(who))
    response = client.post(reverse("run_action", args=[project.pk, "start"]))
    assert response.status_code == status
    assert BatchRun.objects.count() == runs


def test_a_refused_start_explains_itself_on_the_page(client, story, team):
    project, scenes, _ = story
    scenes[0].characters.add(project_services.character_save(project=project, name="Ram"))
    client.force_login(team.editor)
    response = client.post(reverse("run_action", args=[project.pk, "start"]), follow=True)
    body = response.content.decode()
    assert "need a reference image first: Ram" in body
    assert "Generate missing character references" in body


def test_retrying_one_failed_scene_starts_a_run_over_just_that_scene(client, story, team):
    project, scenes, _ = story
    scenes[1].status, scenes[1].last_error = "failed", "boom"
    scenes[1].save()
    client.force_login(team.editor)
    client.post(reverse("run_action", args=[project.pk, "retry"]), {"scene": scenes[1].pk})
    run = BatchRun.objects.get()
    assert list(run.scenes.all()) == [scenes[1]] and run.total == 1


def test_an_unknown_action_is_404(client, story, team):
    project, *_ = story
    client.force_login(team.owner)
    assert client.post(reverse("run_action", args=[project.pk, "explode"])).status_code == 404


def test_the_page_shows_controls_to_editors_and_not_to_viewers(client, story, team):
    project, *_ = story
    client.force_login(team.viewer)
    assert 'id="btn-start"' not in client.get(reverse("project_detail", args=[project.pk])).content.decode()
    client.force_login(team.editor)
    body = client.get(reverse("project_detail", args=[project.pk])).content.decode()
    assert 'id="btn-start"' in body and 'id="initial-snapshot"' in body


def test_ready_scenes_offer_regenerate_and_failed_ones_retry(client, story, team):
    project, scenes, _ = story
    scenes[1].status = "failed"
    scenes[1].save()
    client.force_login(team.editor)
    body = client.get(reverse("project_detail", args=[project.pk])).content.decode()
    forms = re.findall(r'retry-form" ?(hidden)?>.*?class="small">(\w+)</button>', body, re.S)
    assert sorted(label for hidden, label in forms if not hidden) == ["Regenerate", "Retry"]


def test_regenerating_a_ready_scene_starts_a_run_that_replaces_its_image(client, story, team):
    project, scenes, _ = story
    client.force_login(team.editor)
    client.post(reverse("run_action", args=[project.pk, "retry"]), {"scene": scenes[4].pk})
    run = BatchRun.objects.get()
    assert run.regenerate and list(run.scenes.all()) == [scenes[4]]


@pytest.mark.parametrize("action", ["retry", "start"])
@pytest.mark.parametrize("value", ["abc", "1.5", "-3", "99999999999999999999999"])
def test_a_scene_that_is_not_a_scene_number_is_a_clear_400(client, story, team, action, value):
    project, *_ = story
    client.force_login(team.editor)
    response = client.post(reverse("run_action", args=[project.pk, action]), {"scene": value})
    assert response.status_code == 400
    assert "scene" in response.content.decode().lower()
    assert BatchRun.objects.count() == 0
