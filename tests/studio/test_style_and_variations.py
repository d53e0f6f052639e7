from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from generation.models import GenerationAttempt, SceneVersion
from generation.providers.base import Capabilities
from generation.runs import services
from generation.runs.execution import run_execute
from projects.models import CharacterReference, Scene, SceneSeedLock
from projects.style import Style, placeholders_in
from tests.conftest import png_bytes
from tests.generation.conftest import simulated

pytestmark = pytest.mark.django_db(transaction=True)


class Spy(type(simulated())):
    """Records every request it is sent."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**{"latency": 0.01, **kwargs})
        self.sent = []

    async def generate(self, request):
        self.sent.append(request)
        return await super().generate(request)


class NegativeSpy(Spy):
    CAPABILITIES = Capabilities(negative_prompt=True)


async def execute(run, provider):
    return await run_execute(run_id=run.pk, worker="w1", provider=provider)


def test_the_style_wraps_the_prompt_and_fills_placeholders():
    style = Style(prefix="Ink sketch, {shot}.", suffix="Characters: {characters}")
    sent = style.compose(prompt="A goat on a roof", shot="wide shot", characters="Gopal")
    assert sent == "Ink sketch, wide shot. A goat on a roof Characters: Gopal"
    placed = Style(prefix="[{camera}] {prompt} -- storyboard")
    assert placed.compose(prompt="Dawn", camera="dolly in") == "[dolly in] Dawn -- storyboard"
    assert Style().compose(prompt="  Dawn\nover the river ") == "Dawn\nover the river"


@pytest.mark.parametrize("template", ["{dialogue}", "{prompt!r}", "{shot:>10}", "{prompt", "{0}"])
def test_unknown_or_malformed_placeholders_are_refused_with_the_allowed_ones(template):
    with pytest.raises(ValidationError) as refused:
        placeholders_in(template)
    assert "{prompt}" in " ".join(refused.value.messages)


def test_saving_a_style_with_an_unknown_placeholder_is_refused(team):
    project = team.project
    project.style_prefix = "Film still {mood}"
    with pytest.raises(ValidationError) as refused:
        project.full_clean()
    assert "Unknown placeholder {mood}" in str(refused.value)


async def test_every_request_carries_the_project_style_and_the_attempt_records_it(story, start):
    project, scenes, gopal = story

    def styled():
        project.style_prefix = "Charcoal storyboard, {shot}:"
        project.negative_prompt = "text, watermark"
        project.aspect_ratio = "16:9"
        project.save()
        Scene.objects.filter(pk=scenes[0].pk).update(notes={"shot": "close-up", "dialogue": "Not sent"})
        return start()

    run = await database_sync_to_async(styled)()
    provider = NegativeSpy()
    await execute(run, provider)
    first = next(r for r in provider.sent if r.label == "Scene 1")
    assert first.prompt == "Charcoal storyboard, close-up: Gopal at dawn"
    assert "Not sent" not in first.prompt
    assert (first.negative_prompt, first.aspect_ratio, first.size) == ("text, watermark", "16:9", "1792x1024")

    def recorded():
        attempt = GenerationAttempt.objects.get(scene=scenes[0])
        version = SceneVersion.objects.get(scene=scenes[0])
        return attempt, version

    attempt, version = await database_sync_to_async(recorded)()
    assert attempt.prompt == first.prompt and attempt.negative_prompt == "text, watermark"
    assert version.prompt == first.prompt and version.scene_prompt == "Gopal at dawn"
    assert version.style["prefix"] == "Charcoal storyboard, {shot}:"


async def test_a_provider_without_negative_prompts_is_not_sent_one(story, start):
    project, scenes, gopal = story

    def styled():
        project.negative_prompt = "blur"
        project.save()
        return start()

    run = await database_sync_to_async(styled)()
    provider = Spy()
    await execute(run, provider)
    assert provider.sent and all(r.negative_prompt == "" for r in provider.sent)


async def test_variations_send_one_request_each_and_keep_every_candidate(story, start):
    project, scenes, gopal = story
    run = await database_sync_to_async(start)(scene_ids=[scenes[0].pk], candidates=3)
    assert run.candidates == 3
    provider = Spy()
    run = await execute(run, provider)
    assert provider.requests == 3 and run.requests == 3
    assert (run.status, run.succeeded, run.failed) == ("completed", 1, 0)
    assert run.summary == "Successfully generated the one scene!"

    def versions():
        scene = Scene.objects.get(pk=scenes[0].pk)
        found = list(SceneVersion.objects.filter(scene=scene).order_by("candidate"))
        return scene, found

    scene, found = await database_sync_to_async(versions)()
    assert [v.candidate for v in found] == [1, 2, 3]
    assert len({v.image.name for v in found}) == 3
    assert scene.status == "ready" and scene.claimed_by is None
    assert scene.image.name in {v.image.name for v in found}


def test_variations_are_between_one_and_four(story, start):
    project, scenes, gopal = story
    for wrong in (0, 5):
        with pytest.raises(services.RunRefused):
            start(scene_ids=[scenes[0].pk], candidates=wrong)


async def test_a_locked_seed_is_sent_again_where_the_provider_honours_seeds(story, start):
    project, scenes, gopal = story
    await database_sync_to_async(SceneSeedLock.objects.create)(scene=scenes[1], seed=4242)
    run = await database_sync_to_async(start)(scene_ids=[scenes[1].pk])
    provider = Spy()
    await execute(run, provider)
    assert [r.seed for r in provider.sent] == [4242]


async def test_references_go_in_a_stable_order_within_the_limit_and_hashes_are_recorded(story, start):
    project, scenes, gopal = story

    def add_views():
        for position, (label, color) in enumerate([("profile", "blue"), ("full body", "red")], start=1):
            extra = CharacterReference(character=gopal, label=label, position=position)
            extra.image.save("view.png", ContentFile(png_bytes(color=color)), save=True)
        return start(scene_ids=[scenes[0].pk])

    run = await database_sync_to_async(add_views)()
    provider = Spy()
    provider.max_references = 2
    await execute(run, provider)
    (request,) = provider.sent
    assert [r.name for r in request.references] == ["Gopal", "Gopal (profile)"]
    version = await database_sync_to_async(SceneVersion.objects.get)(scene=scenes[0])
    assert version.reference_hashes == [hashlib.sha256(r.image).hexdigest() for r in request.references]


async def test_an_unreadable_reference_blocks_the_scene_instead_of_generating_without_it(story, start):
    project, scenes, gopal = story
    await asyncio.to_thread(Path(gopal.reference.path).write_bytes, b"\x89PNG\r\n\x1a\n not really")
    run = await database_sync_to_async(start)(scene_ids=[scenes[0].pk, scenes[1].pk])
    provider = Spy()
    run = await execute(run, provider)
    assert [r.label for r in provider.sent] == ["Scene 2"]
    scene = await database_sync_to_async(Scene.objects.get)(pk=scenes[0].pk)
    assert scene.status == "failed" and "reference image of Gopal" in scene.last_error
    assert (run.succeeded, run.failed) == (1, 1)


async def test_a_portrait_attempt_records_the_prompt_it_sent(story, team):
    project, scenes, gopal = story

    def begin():
        from projects import services as project_services

        project_services.character_save(project=project, name="Ram", description="a king")
        run, _ = services.character_run_start(project=project, user=team.editor)
        return run

    run = await database_sync_to_async(begin)()
    await execute(run, Spy())
    attempt = await database_sync_to_async(GenerationAttempt.objects.get)(character__name="Ram")
    assert attempt.prompt.startswith("Character reference portrait of Ram. a king")
