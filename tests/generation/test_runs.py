from __future__ import annotations

import asyncio
import itertools
import threading

import pytest
from channels.db import database_sync_to_async
from django.db import IntegrityError, connection, transaction

from generation.engine.clock import LoopClock
from generation.engine.config import EngineConfig
from generation.engine.jobs import Progress
from generation.models import BatchRun, GenerationAttempt
from generation.providers.base import QuotaError
from generation.runs import services
from generation.runs.execution import RunExecution, run_execute
from generation.runs.recorder import RunRecorder
from generation.selectors import project_snapshot
from projects import services as project_services
from projects.models import Scene
from tests.generation.conftest import simulated

pytestmark = pytest.mark.django_db(transaction=True)


async def execute(run, provider=None, worker="w1"):
    return await run_execute(run_id=run.pk, worker=worker, provider=provider or simulated())


def statuses(project) -> list[str]:
    return list(project.scenes.order_by("position").values_list("status", flat=True))


async def test_a_run_generates_every_scene_that_needs_it_and_explains_skips(story, start):
    project, scenes, gopal = story
    run = await database_sync_to_async(start)()
    provider = simulated()
    run = await execute(run, provider)
    assert (run.status, run.total, run.succeeded, run.failed, run.skipped) == ("completed", 6, 4, 0, 2)
    assert run.summary == "Generated 4 of 6 scenes (2 skipped)"
    assert await database_sync_to_async(statuses)(project) == [
        "ready",
        "ready",
        "skipped",
        "ready",
        "ready",
        "ready",
    ]
    assert provider.requests == 4
    assert not await database_sync_to_async(Scene.objects.filter(claimed_by__isnull=False).exists)()


async def test_each_scene_request_carries_its_characters_references(story, start):
    project, scenes, gopal = story
    seen = {}

    class Spy(type(simulated())):
        async def generate(self, request):
            seen[request.label] = [r.name for r in request.references]
            return await super().generate(request)

    run = await database_sync_to_async(start)()
    await execute(run, Spy(latency=0.01))
    assert seen == {"Scene 1": ["Gopal"], "Scene 2": [], "Scene 4": ["Gopal"], "Scene 6": []}


def test_preflight_refuses_and_names_characters_without_references(story, team):
    project, scenes, gopal = story
    ram = project_services.character_save(project=project, name="Ram")
    scenes[1].characters.add(ram)
    with pytest.raises(services.RunRefused) as refused:
        services.run_start(project=project, user=team.editor)
    assert "Ram" in refused.value.message and refused.value.missing == [ram]
    assert not BatchRun.objects.exists()


def test_preflight_ignores_characters_only_in_scenes_that_will_be_skipped(story, team):
    project, scenes, gopal = story
    ram = project_services.character_save(project=project, name="Ram")
    scenes[4].characters.add(ram)  # already generated
    run, created = services.run_start(project=project, user=team.editor)
    assert created and run.total == 6


def test_a_second_start_gets_the_active_run_back(story, team):
    project, *_ = story
    first, created = services.run_start(project=project, user=team.editor)
    second, created_again = services.run_start(project=project, user=team.owner)
    assert created and not created_again and second.pk == first.pk


def test_the_database_allows_only_one_active_run_per_project(story, team):
    project, *_ = story
    BatchRun.objects.create(project=project, provider="sketch")
    with pytest.raises(IntegrityError), transaction.atomic():
        BatchRun.objects.create(project=project, provider="sketch", status="running")
    BatchRun.objects.create(project=project, provider="sketch", status="completed")


def test_concurrent_starts_create_exactly_one_run(story, team):
    project, *_ = story
    results, barrier = [], threading.Barrier(4)

    def go():

        barrier.wait()
        try:
            results.append(services.run_start(project=project, user=team.editor))
        finally:
            connection.close()

    threads = [threading.Thread(target=go) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert BatchRun.objects.count() == 1
    assert sum(created for _, created in results) == 1
    assert {run.pk for run, _ in results} == {BatchRun.objects.get().pk}


def test_a_scene_held_by_a_live_run_cannot_be_claimed_by_another(story, team, make_user):
    project, scenes, _ = story
    other_project = project_services.project_create(title="B", user=team.owner)
    first = BatchRun.objects.create(project=project, provider="sketch", status="running")
    second = BatchRun.objects.create(project=other_project, provider="sketch", status="running")
    assert services.scenes_claim(run=first, scene_ids=[scenes[0].pk]) == 1
    assert services.scenes_claim(run=second, scene_ids=[scenes[0].pk]) == 0
    first.status = "failed"
    first.save()
    # The holder died: its claim no longer blocks anybody.
    assert services.scenes_claim(run=second, scene_ids=[scenes[0].pk]) == 1


def test_two_workers_racing_for_one_run_one_wins(story, team):
    project, *_ = story
    run, _ = services.run_start(project=project, user=team.editor)
    assert services.run_claim(run_id=run.pk, worker="a") is not None
    assert services.run_claim(run_id=run.pk, worker="b") is None
    BatchRun.objects.filter(pk=run.pk).update(
        heartbeat=BatchRun.objects.get(pk=run.pk).created.replace(year=2000)
    )
    assert services.run_claim(run_id=run.pk, worker="b").owner == "b"


def test_a_heartbeat_renews_the_lease_in_one_statement_and_still_sees_a_stop_and_a_takeover(
    story, team, django_assert_num_queries
):
    """A worker beats for every run it holds twice a second, on the thread all its writes share: the
    beat was two statements (renew, then read the stop flag); while nothing changed it is one."""
    project, *_ = story
    run, _ = services.run_start(project=project, user=team.editor)
    services.run_claim(run_id=run.pk, worker="a")
    before = BatchRun.objects.get(pk=run.pk).heartbeat
    with django_assert_num_queries(1):
        assert services.run_beat(run_id=run.pk, worker="a") == (True, False)
    assert BatchRun.objects.get(pk=run.pk).heartbeat > before

    BatchRun.objects.filter(pk=run.pk).update(stop_requested=True)
    assert services.run_beat(run_id=run.pk, worker="a") == (True, True)
    BatchRun.objects.filter(pk=run.pk).update(owner="b")
    assert services.run_beat(run_id=run.pk, worker="a") == (False, False)
    assert BatchRun.objects.get(pk=run.pk).owner == "b"


@pytest.mark.parametrize(
    ("sim", "status", "kind", "requests", "summary"),
    [
        (
            {"transient_rate": 1.0},
            "failed",
            "transient",
            3,
            "Error: the one scene failed to generate. Please try again.",
        ),
        # Issue 14 (6): after a safety refusal "Please try again" was the defect; say how to change it.
        (
            {"safety_word": "river"},
            "failed",
            "safety",
            1,
            "Error: the provider refused the prompt of scene 2 under its content policy. "
            "Reword it (Edit the scene), then Retry.",
        ),
    ],
)
async def test_failures_are_recorded_per_scene_with_reason_and_attempts(
    story, start, sim, status, kind, requests, summary
):
    project, scenes, _ = story
    run = await database_sync_to_async(start)(scene_ids=[scenes[1].pk])
    run = await execute(run, simulated(**sim))
    scene = await database_sync_to_async(Scene.objects.get)(pk=scenes[1].pk)
    attempts = await database_sync_to_async(list)(
        GenerationAttempt.objects.filter(scene=scene).order_by("number")
    )
    assert scene.status == status and scene.last_error
    assert [a.number for a in attempts] == list(range(1, requests + 1))
    assert {a.error_kind for a in attempts} == {kind}
    assert all(a.retry_of_id == prev.pk for prev, a in itertools.pairwise(attempts))
    assert run.summary == summary


async def test_quota_errors_wait_and_retry_without_spending_attempts(story, start):
    project, scenes, _ = story
    run = await database_sync_to_async(start)(overrides={"start_concurrency": 4})
    provider = simulated(latency=0.05, max_concurrent=1, concurrency_retry_after=0.02)
    run = await execute(run, provider)
    assert run.status == "completed" and run.succeeded == 4
    assert run.quota_errors > 0 and run.requests == 4 + run.quota_errors
    quota_rows = await database_sync_to_async(
        GenerationAttempt.objects.filter(run=run, error_kind="quota").count
    )()
    assert quota_rows == run.quota_errors


async def test_a_daily_quota_parks_the_run_with_a_clear_reason_and_keeps_the_rest_pending(story, start):
    # Issue 15: a spent per-day quota parks the run until the reset instead of failing it.
    project, scenes, _ = story
    run = await database_sync_to_async(start)(overrides={"start_concurrency": 1, "max_concurrency": 1})
    run = await execute(run, simulated(daily_quota=2))
    assert run.status == "waiting_daily_quota" and "daily" in run.reason.lower()
    assert run.succeeded == 2
    assert await database_sync_to_async(statuses)(project) == [
        "ready",
        "ready",
        "skipped",
        "pending",
        "ready",
        "pending",
    ]


async def test_an_auth_failure_fails_the_run_with_the_reason(story, start):
    project, *_ = story
    run = await database_sync_to_async(start)()
    run = await execute(run, simulated(auth_failure=True))
    assert run.status == "failed" and run.reason


class GatedProvider(type(simulated())):
    """Answers at once, except that the second request waits for the test to open the gate."""

    def __init__(self):
        super().__init__(latency=0.0)
        self.second_started, self.gate, self.calls = asyncio.Event(), asyncio.Event(), 0

    async def generate(self, request):
        self.calls += 1
        if self.calls == 2:
            self.second_started.set()
            await self.gate.wait()
        return await super().generate(request)


async def test_stop_keeps_finished_images_and_resume_generates_exactly_the_rest(story, start, team):
    project, scenes, _ = story
    run = await database_sync_to_async(start)(overrides={"start_concurrency": 1, "max_concurrency": 1})
    provider = GatedProvider()
    claimed = await database_sync_to_async(services.run_claim)(run_id=run.pk, worker="w")
    execution = RunExecution(claimed, provider=provider, worker="w")
    task = asyncio.create_task(execution.execute())
    await asyncio.wait_for(provider.second_started.wait(), 5)
    await database_sync_to_async(services.run_stop)(run=run)
    await asyncio.wait_for(execution.stop_seen.wait(), 5)  # the worker saw the flag the page set
    provider.gate.set()  # the request in flight finishes within the grace period and is kept
    run = await asyncio.wait_for(task, 5)
    assert run.status == "stopped" and provider.calls == 2
    done = await database_sync_to_async(statuses)(project)
    assert done == ["ready", "ready", "skipped", "pending", "ready", "pending"]
    resumed, created = await database_sync_to_async(services.run_start)(project=project, user=team.editor)
    assert created
    resumed = await execute(resumed, simulated())
    assert (resumed.skipped, resumed.succeeded) == (4, 2)  # three ready and one empty skipped
    assert (await database_sync_to_async(statuses)(project)).count("ready") == 5


def test_stopping_a_queued_run_ends_it_at_once(story, team):
    project, *_ = story
    run, _ = services.run_start(project=project, user=team.editor)
    run = services.run_stop(run=run)
    assert run.status == "stopped" and run.finished and run.summary


async def test_regenerate_replaces_images_of_ready_scenes(story, start):
    project, scenes, _ = story
    before = scenes[4].image.name
    run = await database_sync_to_async(start)(scene_ids=[scenes[4].pk], regenerate=True)
    run = await execute(run)
    scene = await database_sync_to_async(Scene.objects.get)(pk=scenes[4].pk)
    assert run.succeeded == 1 and scene.image.name != before


async def test_a_character_run_generates_missing_references(story, team):
    project, scenes, gopal = story
    ram = await database_sync_to_async(project_services.character_save)(
        project=project, name="Ram", description="a king"
    )
    run, created = await database_sync_to_async(services.character_run_start)(
        project=project, user=team.editor
    )
    assert created and run.kind == "characters" and run.total == 1
    run = await execute(run)
    await database_sync_to_async(ram.refresh_from_db)()
    assert run.succeeded == 1 and ram.has_reference()
    assert run.summary == "Successfully generated the one character reference!"  # issue 14 (6)


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ((20, 20, 0, 0), "Successfully generated all 20 scenes!"),
        ((20, 17, 1, 2), "Generated 17 of 20 scenes (1 failed, 2 skipped)"),
        ((20, 0, 18, 2), "Error: all 18 scenes failed to generate. Please try again."),
        ((20, 18, 1, 1), "Generated 18 of 20 scenes (1 failed, 1 skipped)"),
        ((20, 5, 0, 2), "Generated 5 of 20 scenes (2 skipped, 13 not attempted)"),
        ((20, 0, 0, 20), "Nothing to generate: all 20 scenes were skipped"),
    ],
)
def test_the_summary_message_has_the_product_owners_three_shapes(counts, message):
    total, succeeded, failed, skipped = counts
    run = BatchRun(total=total, succeeded=succeeded, failed=failed, skipped=skipped)
    assert run.summary_message() == message


async def test_the_snapshot_says_when_a_quota_wait_ends_until_the_run_runs_again(story):
    project, *_ = story
    run = await database_sync_to_async(BatchRun.objects.create)(
        project=project, provider="sketch", status="running", owner="w"
    )
    recorder = RunRecorder(run, worker="w", config=EngineConfig(), clock=LoopClock())

    async def snapshot_run():
        return (await database_sync_to_async(project_snapshot)(project_id=project.pk))["run"]

    await recorder.quota_wait(15.0, 0.0, 1, QuotaError("slow down", retry_after=15))
    waiting = await snapshot_run()
    assert waiting["status"] == "waiting_quota" and waiting["quota_resume_at"]
    paused = Progress(6, 0, 0, 0, 6, 5, 1, 0, 1, 1.0, None, paused_until=20.0)
    await database_sync_to_async(recorder.write_progress)(paused)
    assert (await snapshot_run())["quota_resume_at"] == waiting["quota_resume_at"]
    running = Progress(6, 1, 0, 1, 5, 5, 2, 0, 1, 2.0, 10.0, paused_until=None)
    await database_sync_to_async(recorder.write_progress)(running)
    assert (await snapshot_run())["quota_resume_at"] is None


async def test_progress_goes_to_the_database_only_with_something_the_row_does_not_hold(story, monkeypatch):
    """The progress hook runs after every outcome, and the outcome's own write mostly stored its counts
    already: nothing to write means no trip to the ORM's thread, and the event shows the row as it is."""
    project, *_ = story
    run = await database_sync_to_async(BatchRun.objects.create)(
        project=project, provider="sketch", status="running", owner="w"
    )
    events: list[dict] = []
    recorder = RunRecorder(run, worker="w", config=EngineConfig(), clock=LoopClock(), listener=events.append)
    writes, write = [], recorder.write_progress
    monkeypatch.setattr(recorder, "write_progress", lambda snap: writes.append(snap) or write(snap))

    async def stored() -> int:
        return (await database_sync_to_async(BatchRun.objects.get)(pk=run.pk)).requests

    one = Progress(6, 0, 0, 1, 6, 5, 1, 0, 0, 1.0, 9.0, paused_until=None)
    await recorder.progress(one)
    await recorder.progress(Progress(6, 0, 0, 1, 6, 5, 1, 0, 0, 2.0, 8.0, paused_until=None))  # later, same
    assert len(writes) == 1 and await stored() == 1
    assert events[-1]["requests"] == 1 and events[-1]["eta_at"] == events[0]["eta_at"], "as the row holds"

    await recorder.progress(Progress(6, 0, 0, 2, 6, 5, 2, 0, 0, 3.0, 7.0, paused_until=None))  # a request
    assert len(writes) == 2 and await stored() == 2 and events[-1]["requests"] == 2
    await recorder.progress(Progress(6, 0, 0, 0, 6, 5, 2, 0, 1, 4.0, 7.0, paused_until=20.0))  # a pause
    assert len(writes) == 3 and events[-1]["status"] == "waiting_quota"
    row = await database_sync_to_async(BatchRun.objects.get)(pk=run.pk)
    assert row.status == "waiting_quota" and row.quota_errors == 1


def eight_scenes(project) -> list[Scene]:
    return [project_services.scene_create(project=project, prompt=f"Panel {i}") for i in range(1, 9)]


async def test_scenes_deleted_while_the_run_generates_them_are_counted_as_removed(team, start, caplog):
    project = team.project
    scenes = await database_sync_to_async(eight_scenes)(project)
    doomed = [scenes[2], scenes[6]]

    class DeletesMidRun(type(simulated())):
        async def generate(self, request):
            result = await super().generate(request)
            if request.label == "Scene 3":  # while its own request is in flight, and one not yet sent
                for scene in doomed:
                    await database_sync_to_async(project_services.scene_delete)(scene=scene)
            return result

    run = await database_sync_to_async(start)()
    run = await execute(run, DeletesMidRun(latency=0.01))
    assert (run.total, run.succeeded, run.failed, run.removed) == (8, 6, 0, 2)
    assert run.summary == "Generated 6 of 8 scenes (2 removed during the run)"
    assert "hook failed" not in caplog.text
    remaining = await database_sync_to_async(statuses)(project)
    assert remaining == ["ready"] * 6


async def test_a_replace_import_during_a_run_says_the_scenes_were_removed(team, start, caplog):
    project = team.project
    await database_sync_to_async(eight_scenes)(project)

    class ImportsMidRun(type(simulated())):
        replaced = False

        async def generate(self, request):
            if not self.replaced:
                self.replaced = True
                await database_sync_to_async(project_services.story_import)(
                    project=project, text="New one.\n\nNew two.", mode="replace"
                )
            return await super().generate(request)

    run = await database_sync_to_async(start)()
    run = await execute(run, ImportsMidRun(latency=0.01))
    assert (run.succeeded, run.removed) == (0, 8)
    assert run.summary == "Generated 0 of 8 scenes (8 removed during the run)"
    assert "hook failed" not in caplog.text
    assert await database_sync_to_async(statuses)(project) == ["pending", "pending"]


def test_the_summary_counts_removed_scenes():
    run = BatchRun(total=8, succeeded=5, failed=1, removed=2)
    assert run.summary_message() == "Generated 5 of 8 scenes (1 failed, 2 removed during the run)"


async def test_skips_carry_a_code_along_with_the_words_in_events_and_the_snapshot(story, start):
    project, scenes, _ = story
    events: list[dict] = []
    run = await database_sync_to_async(start)()
    await RunExecution(
        await database_sync_to_async(services.run_claim)(run_id=run.pk, worker="w1"),
        provider=simulated(),
        worker="w1",
        listener=events.append,
    ).execute()
    skipped = {
        e["item"]["position"]: (e["reason"], e["reason_code"]) for e in events if e["type"] == "scene.skipped"
    }
    assert skipped == {3: ("empty prompt", "empty_prompt"), 5: ("already generated", "already_generated")}
    snapshot = await database_sync_to_async(project_snapshot)(project_id=project.pk)
    empty = next(s for s in snapshot["scenes"] if s["position"] == 3)
    assert (empty["status"], empty["reason"], empty["reason_code"]) == (
        "skipped",
        "empty prompt",
        "empty_prompt",
    )
    assert next(s for s in snapshot["scenes"] if s["position"] == 1)["reason_code"] == ""
