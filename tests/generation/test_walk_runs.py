"""Issue 14's walk, the run side: retrying failed scenes that still show an older image, and the words a
run ends or stops with."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.core.files.base import ContentFile

from generation.engine.clock import LoopClock
from generation.engine.config import EngineConfig
from generation.engine.jobs import StopReason
from generation.models import BatchRun
from generation.runs import actions
from generation.runs.execution import run_execute
from generation.runs.recorder import RunRecorder
from projects import services as project_services
from projects.models import Scene
from tests.conftest import png_bytes
from tests.generation.conftest import FAST, simulated

pytestmark = pytest.mark.django_db(transaction=True)


def _failed_with_an_older_image(team) -> Scene:
    scene = project_services.scene_create(project=team.project, prompt="A lantern in the rain")
    scene.image.save("old.png", ContentFile(png_bytes()), save=True)
    Scene.objects.filter(pk=scene.pk).mark_failed(reason="The provider timed out")
    return scene


async def test_retry_all_failed_generates_a_failed_scene_that_still_has_an_older_image(team, settings):
    settings.GENERATION_ENGINE = {**settings.GENERATION_ENGINE, **FAST}
    scene = await database_sync_to_async(_failed_with_an_older_image)(team)
    done = await database_sync_to_async(actions.perform_action)(
        project_id=team.project.pk, user=team.editor, action="retry_failed"
    )
    run = await run_execute(run_id=done.run.pk, worker="w1", provider=simulated())
    assert (run.succeeded, run.skipped) == (1, 0), run.summary
    scene = await database_sync_to_async(Scene.objects.get)(pk=scene.pk)
    assert scene.status == "ready" and scene.image.name != "old.png"


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ((1, 1, 0, 0), "Successfully generated the one scene!"),
        ((1, 0, 0, 1), "Nothing to generate: the one scene was skipped"),
        ((1, 0, 1, 0), "Error: the one scene failed to generate. Please try again."),
        ((1, 0, 0, 0), "Generated 0 of 1 scene (1 not attempted)"),
        ((2, 0, 0, 2), "Nothing to generate: all 2 scenes were skipped"),
    ],
)
def test_summaries_of_one_scene_are_english(counts, message):
    total, succeeded, failed, skipped = counts
    run = BatchRun(total=total, succeeded=succeeded, failed=failed, skipped=skipped)
    assert run.summary_message() == message


async def test_a_safety_refusal_says_the_prompt_was_refused_and_how_to_change_it(story, start):
    project, scenes, _ = story
    run = await database_sync_to_async(start)(scene_ids=[scenes[1].pk])
    run = await run_execute(run_id=run.pk, worker="w1", provider=simulated(safety_word="river"))
    assert "Please try again" not in run.summary
    assert run.summary.startswith("Error: the provider refused the prompt of scene 2")
    assert "Reword it" in run.summary


async def test_stopping_says_what_stopping_does(team):
    run = await database_sync_to_async(BatchRun.objects.create)(
        project=team.project, provider="sketch", status="running", owner="w"
    )
    events: list[dict] = []
    recorder = RunRecorder(run, worker="w", config=EngineConfig(), clock=LoopClock(), listener=events.append)
    await recorder.run_stopping(StopReason.STOPPED, "Stopped on request")
    (event,) = events
    assert event["type"] == "run.stopping"
    assert f"Stopping: {event['message']}" == (
        "Stopping: no new requests; images already being generated may still arrive"
    )
