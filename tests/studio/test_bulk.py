from __future__ import annotations

import pytest
from django.urls import reverse

from generation.models import BatchRun
from projects.models import Scene

pytestmark = pytest.mark.django_db


def bulk(client, team, action, scenes, **extra):
    data = {"bulk_action": action, "scenes": [s.pk for s in scenes], **extra}
    return client.post(reverse("scenes_bulk", args=[team.project.pk]), data)


def prompts(team) -> list[str]:
    return list(team.project.scenes.order_by("position").values_list("prompt", flat=True))


def test_delete_asks_once_then_deletes_the_selection_and_renumbers(client, team, scenes):
    client.force_login(team.editor)
    page = bulk(client, team, "delete", scenes[1:3])
    assert page.status_code == 200 and "Delete 2 scenes?" in page.content.decode()
    assert Scene.objects.count() == 5
    bulk(client, team, "delete", scenes[1:3], confirm="1")
    assert prompts(team) == ["Scene prompt 1", "Scene prompt 4", "Scene prompt 5"]
    assert list(team.project.scenes.values_list("position", flat=True)) == [1, 2, 3]


def test_move_keeps_the_selections_order(client, team, scenes):
    client.force_login(team.editor)
    bulk(client, team, "move", [scenes[4], scenes[2]], to="1")
    assert prompts(team) == [f"Scene prompt {n}" for n in (3, 5, 1, 2, 4)]


def test_regenerate_starts_one_run_over_the_selection(client, team, scenes):
    client.force_login(team.editor)
    bulk(client, team, "regenerate", scenes[:3])
    run = BatchRun.objects.get()
    assert run.regenerate and set(run.scenes.values_list("pk", flat=True)) == {s.pk for s in scenes[:3]}


def test_retry_takes_only_the_failed_ones(client, team, scenes):
    Scene.objects.filter(pk=scenes[1].pk).mark_failed(reason="boom")
    client.force_login(team.editor)
    bulk(client, team, "retry", scenes[:3])
    assert list(BatchRun.objects.get().scenes.values_list("pk", flat=True)) == [scenes[1].pk]


def test_scenes_of_another_project_are_ignored_and_viewers_refused(client, team, scenes, make_user):
    from projects import services

    other = services.project_create(title="Other", user=team.editor)
    foreign = services.scene_create(project=other, prompt="Not yours")
    client.force_login(team.editor)
    bulk(client, team, "delete", [foreign], confirm="1")
    assert Scene.objects.filter(pk=foreign.pk).exists()
    client.force_login(team.viewer)
    assert bulk(client, team, "delete", scenes, confirm="1").status_code == 403
