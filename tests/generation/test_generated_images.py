"""Generated images are typed by their content too: the provider's mime is a claim, not a fact."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from generation.models import GenerationAttempt
from generation.runs.execution import run_execute
from projects.models import Character, Scene
from tests.conftest import png_bytes
from tests.generation.conftest import FAST, simulated
from tests.projects.test_image_uploads import SCRIPT, jpeg_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def answering(image: bytes, mime: str):
    """A provider whose every answer carries these bytes under this mime."""

    class Answering(type(simulated())):
        async def generate(self, request):
            result = await super().generate(request)
            return dataclasses.replace(result, image=image, mime=mime)

    return Answering(latency=0.0)


def stored_scene_files() -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).glob("projects/*/scenes/*") if p.is_file()]


async def run_scene(start, scene, provider):
    run = await database_sync_to_async(start)(scene_ids=[scene.pk])
    run = await run_execute(run_id=run.pk, worker="w", provider=provider)
    return run, await database_sync_to_async(Scene.objects.get)(pk=scene.pk)


@pytest.mark.parametrize(
    ("image", "claimed", "suffix"),
    [(jpeg_bytes(), "image/png", ".jpg"), (None, "image/jpeg", ".png"), (None, "text/html", ".png")],
    ids=["jpeg-claimed-png", "png-claimed-jpeg", "png-claimed-html"],
)
async def test_a_generated_image_is_stored_under_the_suffix_of_its_content(
    story, start, image, claimed, suffix
):
    project, scenes, _ = story
    run, scene = await run_scene(start, scenes[1], answering(image or png_bytes(), claimed))
    assert run.succeeded == 1
    assert Path(scene.image.name).suffix == suffix


async def test_a_provider_answering_garbage_fails_the_scene_with_the_reason_and_stores_nothing(story, start):
    project, scenes, _ = story
    before = stored_scene_files()
    run, scene = await run_scene(start, scenes[1], answering(SCRIPT, "image/png"))
    assert (run.succeeded, run.failed) == (0, 1)
    assert scene.status == "failed" and not scene.image
    assert "not a valid image" in scene.last_error
    assert stored_scene_files() == before
    attempts = await database_sync_to_async(list)(GenerationAttempt.objects.filter(scene=scene))
    assert attempts and all(a.status == "failed" for a in attempts)


async def test_a_character_run_refuses_a_garbage_portrait(story, team):
    from generation import services
    from projects import services as project_services

    project, *_ = story
    ram = await database_sync_to_async(project_services.character_save)(
        project=project, name="Ram", description="a king"
    )
    run, _ = await database_sync_to_async(services.character_run_start)(
        project=project, user=team.editor, overrides=FAST
    )
    run = await run_execute(
        run_id=run.pk, worker="w", provider=answering(b"\x89PNG\r\n\x1a\n garbage", "image/png")
    )
    ram = await database_sync_to_async(Character.objects.get)(pk=ram.pk)
    assert run.failed == 1 and not ram.has_reference()


async def test_the_check_of_an_answer_names_the_suffix_its_file_is_stored_under(monkeypatch):
    """The format read when the answer is checked is the one its file is named by: the bytes are not
    read a third time to name it, and an answer nobody checked is still named by its content."""
    from generation.checked import image_checked
    from generation.providers.base import ImageResult
    from generation.runs import targets

    checked = await image_checked(ImageResult(image=jpeg_bytes(), mime="image/png"), decoded=False)
    assert (checked.mime, checked.content_suffix) == ("image/jpeg", ".jpg")

    unchecked = ImageResult(image=jpeg_bytes(), mime="image/png")
    assert targets.content_suffix(unchecked) == ".jpg"

    def unread(source):
        raise AssertionError("the image was read again to name its file")

    monkeypatch.setattr(targets, "detect_image_format", unread)
    assert targets.content_suffix(checked) == ".jpg"
    with pytest.raises(AssertionError):
        targets.content_suffix(unchecked)
