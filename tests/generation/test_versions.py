from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from generation.models import GenerationAttempt, SceneVersion
from generation.runs import services
from generation.runs.execution import run_execute
from projects.models import Scene
from tests.generation.conftest import simulated

pytestmark = pytest.mark.django_db(transaction=True)


async def regenerate(start, scene):
    run = await database_sync_to_async(start)(scene_ids=[scene.pk], regenerate=True)
    return await run_execute(run_id=run.pk, worker="w", provider=simulated())


async def test_regenerating_keeps_every_previous_image_as_a_version(story, start):
    project, scenes, _ = story
    scene = scenes[4]  # has an image that predates versions
    original = scene.image.name
    await regenerate(start, scene)
    await regenerate(start, scene)
    versions = await database_sync_to_async(list)(SceneVersion.objects.filter(scene=scene).order_by("number"))
    assert [v.number for v in versions] == [1, 2, 3]
    assert versions[0].image.name == original
    refreshed = await database_sync_to_async(Scene.objects.get)(pk=scene.pk)
    assert refreshed.image.name == versions[2].image.name
    for version in versions:
        assert await database_sync_to_async(version.image.storage.exists)(version.image.name)


async def test_a_version_records_how_it_was_made(story, start):
    project, scenes, _ = story
    await regenerate(start, scenes[0])
    version = await database_sync_to_async(SceneVersion.objects.select_related("attempt").get)(
        scene=scenes[0]
    )
    assert version.provider == "sketch"  # the run's configured provider (the test injects a simulated client)
    assert version.attempts == 1 and version.seed is not None
    assert version.prompt == "Gopal at dawn" and version.attempt.status == "succeeded"


def test_an_editor_makes_an_older_version_current_again(client, story, team):
    project, scenes, _ = story
    scene = scenes[4]
    old = SceneVersion.objects.create(scene=scene, number=1, image=scene.image.name)
    newer = SceneVersion.objects.create(scene=scene, number=2, image="projects/x/new.png")
    Scene.objects.filter(pk=scene.pk).update(image=newer.image.name)
    client.force_login(team.editor)
    url = reverse("version_make_current", args=[project.pk, scene.pk, old.pk])
    assert client.post(url).status_code == 302
    scene.refresh_from_db()
    assert scene.image.name == old.image.name and SceneVersion.objects.filter(scene=scene).count() == 2
    page = client.get(reverse("scene_edit", args=[project.pk, scene.pk])).content.decode()
    assert "Make current" in page and "v2" in page


@pytest.mark.parametrize(("who", "status"), [("outsider", 404), ("viewer", 403)])
def test_only_editors_switch_versions_and_non_members_cannot_see_them(client, story, team, who, status):
    project, scenes, _ = story
    version = SceneVersion.objects.create(scene=scenes[4], number=1, image=scenes[4].image.name)
    client.force_login(team.user(who))
    assert (
        client.post(reverse("version_make_current", args=[project.pk, scenes[4].pk, version.pk])).status_code
        == status
    )
    image = client.get(reverse("version_image", args=[project.pk, scenes[4].pk, version.pk]))
    assert image.status_code == (404 if who == "outsider" else 200)


async def test_a_retried_scenes_first_attempt_links_to_the_attempt_it_retried(story, start):
    project, scenes, _ = story
    first = await database_sync_to_async(start)(scene_ids=[scenes[1].pk])
    await run_execute(run_id=first.pk, worker="w", provider=simulated(safety_word="river"))
    failed = await database_sync_to_async(GenerationAttempt.objects.get)(scene=scenes[1])
    retried, _ = await database_sync_to_async(services.run_start)(
        project=project, user=None, scene_ids=[scenes[1].pk], overrides={"backoff_base": 0.01}
    )
    await run_execute(run_id=retried.pk, worker="w", provider=simulated())
    latest = await database_sync_to_async(GenerationAttempt.objects.get)(run=retried)
    assert latest.retry_of_id == failed.pk and latest.status == "succeeded"
