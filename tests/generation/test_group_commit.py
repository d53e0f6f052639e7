"""Group commit: item writes that queue up while earlier ones are written go in one transaction, and what
each write means (its fence, its counts, its own failure) stays as it was alone."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.db import IntegrityError, OperationalError
from django.utils import timezone

from generation.engine.clock import LoopClock
from generation.engine.config import EngineConfig
from generation.engine.hooks import StoreError
from generation.engine.jobs import Job
from generation.models import BatchRun, GenerationAttempt, SceneVersion
from generation.providers.base import ImageRequest
from generation.runs import targets
from generation.runs.commits import GroupCommit, Write
from generation.runs.execution import run_execute
from generation.runs.recorder import RunRecorder
from projects import services as project_services
from projects.models import Scene
from tests.generation.conftest import simulated

# --- the queue itself: plain asyncio -------------------------------------------------------------------


class Database:
    """What the recorder passes as "alone" and "together": records the transactions it was asked for.

    `busy` closed: the ORM's thread is busy with other work (other runs'), so nothing is taken yet;
    `gate` closed: the writes taken are being written."""

    def __init__(
        self, *, fail_together: BaseException | None = None, fail_untaken: BaseException | None = None
    ) -> None:
        self.transactions: list[list[str]] = []
        self.fail_together = fail_together
        self.fail_untaken = fail_untaken  # raised before taking anything (the thread could not start)
        self.busy = asyncio.Event()
        self.busy.set()
        self.gate = asyncio.Event()
        self.gate.set()

    async def alone(self, item: Write) -> object:
        await self.gate.wait()
        self.transactions.append([item.what])
        return item.write(*item.args)

    async def together(self, take) -> list[object]:
        await self.busy.wait()
        if self.fail_untaken is not None:
            raise self.fail_untaken
        items = take()
        await self.gate.wait()
        if self.fail_together is not None:
            raise self.fail_together
        self.transactions.append([item.what for item in items])
        return [item.write(*item.args) for item in items]


def _fails(message: str):
    def write() -> None:
        raise ValueError(message)

    return write


async def test_a_write_that_finds_nothing_being_written_goes_alone_at_once():
    database = Database()
    commits = GroupCommit(alone=database.alone, together=database.together)
    assert await commits.write("a", lambda: 1) == 1
    assert database.transactions == [["a"]] and commits.groups == 0


async def test_writes_that_queue_up_meanwhile_go_together_in_their_order():
    database = Database()
    database.gate.clear()  # the first write is being written (the ORM's thread is busy)
    commits = GroupCommit(alone=database.alone, together=database.together)
    first = asyncio.ensure_future(commits.write("a", lambda: "A"))
    await asyncio.sleep(0)
    waiting = [asyncio.ensure_future(commits.write(name, str.upper, name)) for name in "bcd"]
    await asyncio.sleep(0)
    database.gate.set()
    assert await first == "A" and await asyncio.gather(*waiting) == ["B", "C", "D"]
    assert database.transactions == [["a"], ["b", "c", "d"]] and commits.groups == 1


async def test_writes_asked_for_while_the_thread_is_busy_with_other_work_join_the_one_waiting():
    database = Database()
    database.busy.clear()  # the ORM's thread is writing another run's items: nothing taken yet
    commits = GroupCommit(alone=database.alone, together=database.together)
    first = asyncio.ensure_future(commits.write("a", lambda: "A"))
    await asyncio.sleep(0)
    later = [asyncio.ensure_future(commits.write(name, str.upper, name)) for name in "bc"]
    await asyncio.sleep(0)
    database.busy.set()
    assert await first == "A" and await asyncio.gather(*later) == ["B", "C"]
    assert database.transactions == [["a", "b", "c"]] and commits.groups == 1


async def test_a_write_alone_that_fails_is_not_tried_again():
    database = Database()
    commits = GroupCommit(alone=database.alone, together=database.together)
    calls = []

    def broken() -> None:
        calls.append("a")
        raise ValueError("a is broken")

    with pytest.raises(ValueError, match="a is broken"):
        await commits.write("a", broken)
    assert calls == ["a"]  # failed in its own transaction: a second try alone would fail the same way


async def test_writes_whose_group_failed_before_anything_was_taken_are_each_tried_alone():
    database = Database(fail_untaken=RuntimeError("cannot schedule new futures after shutdown"))
    database.gate.clear()
    commits = GroupCommit(alone=database.alone, together=database.together)
    writes = [asyncio.ensure_future(commits.write(name, str.upper, name)) for name in "ab"]
    await asyncio.sleep(0)
    database.gate.set()
    assert await asyncio.wait_for(asyncio.gather(*writes), timeout=5) == ["A", "B"]
    assert database.transactions == [["a"], ["b"]]


async def test_a_group_is_no_longer_than_its_cap():
    database = Database()
    database.gate.clear()
    commits = GroupCommit(alone=database.alone, together=database.together, max_group=2)
    writes = [asyncio.ensure_future(commits.write(name, str, name)) for name in "abcde"]
    await asyncio.sleep(0)
    database.gate.set()
    assert await asyncio.gather(*writes) == list("abcde")
    assert database.transactions == [["a", "b"], ["c", "d"], ["e"]]


async def test_a_failing_group_is_written_again_one_by_one_so_one_error_is_that_writes_alone():
    database = Database(fail_together=IntegrityError("one write broke the group"))
    database.gate.clear()
    commits = GroupCommit(alone=database.alone, together=database.together)
    writes = [
        asyncio.ensure_future(commits.write("a", lambda: "A")),
        asyncio.ensure_future(commits.write("b", _fails("b is broken"))),
        asyncio.ensure_future(commits.write("c", lambda: "C")),
    ]
    await asyncio.sleep(0)
    database.gate.set()
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], ValueError) and str(results[1]) == "b is broken"
    assert database.transactions == [["a"], ["b"], ["c"]]


async def test_an_unavailable_database_fails_the_whole_group_with_the_reason():
    unavailable = StoreError("the database is unavailable: connection refused")
    database = Database(fail_together=unavailable)
    database.gate.clear()
    commits = GroupCommit(alone=database.alone, together=database.together)
    writes = [asyncio.ensure_future(commits.write(name, str, name)) for name in "ab"]
    await asyncio.sleep(0)
    database.gate.set()
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert results == [unavailable, unavailable]
    assert database.transactions == []  # not tried once more per write: each would wait out the retries


async def test_a_cancelled_write_not_yet_begun_is_dropped_and_one_being_written_still_returns():
    database = Database()
    database.gate.clear()
    commits = GroupCommit(alone=database.alone, together=database.together)
    begun = asyncio.ensure_future(commits.write("a", lambda: "A"))
    await asyncio.sleep(0)
    queued = asyncio.ensure_future(commits.write("b", lambda: "B"))
    await asyncio.sleep(0)
    begun.cancel()
    queued.cancel()
    await asyncio.sleep(0)
    database.gate.set()
    # Its outcome stands, so the caller (which would delete the image it wrote) must learn it.
    assert await begun == "A"
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert database.transactions == [["a"]]


# --- the recorder's groups, on the database -------------------------------------------------------------


@pytest.fixture
def groups(monkeypatch):
    """The size of every group the recorder wrote together."""
    sizes: list[int] = []
    together = RunRecorder._together_sync

    def counted(self, items):
        results = together(self, items)
        sizes.append(len(items))
        return results

    monkeypatch.setattr(RunRecorder, "_together_sync", counted)
    return sizes


def _scenes(project, count: int) -> list[Scene]:
    return [project_services.scene_create(project=project, prompt=f"Panel {n}") for n in range(1, count + 1)]


@pytest.mark.django_db(transaction=True)
async def test_a_busy_run_writes_its_items_in_groups_and_every_one_is_recorded(team, start, groups):
    scenes = await database_sync_to_async(_scenes)(team.project, 30)
    run = await database_sync_to_async(start)(overrides={"max_concurrency": 30})
    done = await run_execute(run_id=run.pk, worker="w1", provider=simulated(latency=0))
    assert (done.status, done.succeeded, done.requests) == ("completed", 30, 30)
    assert groups and max(groups) > 1  # it did wait for the ORM's thread, and wrote together

    def recorded():
        ready = Scene.objects.filter(pk__in=[s.pk for s in scenes], status="ready").count()
        versions = SceneVersion.objects.filter(attempt__run=run).count()
        attempts = list(GenerationAttempt.objects.filter(run=run).values_list("status", "latency_ms"))
        return ready, versions, attempts

    ready, versions, attempts = await database_sync_to_async(recorded)()
    assert ready == versions == 30
    # Every attempt closed with its outcome, written with its image in the group.
    assert len(attempts) == 30 and all(s == "succeeded" and ms is not None for s, ms in attempts)


@pytest.mark.django_db(transaction=True)
async def test_one_broken_write_in_a_group_fails_its_scene_alone(team, start, groups, monkeypatch):
    scenes = await database_sync_to_async(_scenes)(team.project, 12)
    broken = scenes[5].pk
    add = targets.scene_version_add

    def version_add(**kwargs):
        if kwargs["scene_id"] == broken:
            raise IntegrityError("a version row the database refused")
        return add(**kwargs)

    monkeypatch.setattr(targets, "scene_version_add", version_add)
    run = await database_sync_to_async(start)(overrides={"max_concurrency": 12})
    done = await run_execute(run_id=run.pk, worker="w1", provider=simulated(latency=0))
    assert (done.succeeded, done.failed) == (11, 1)

    def states():
        return dict(Scene.objects.filter(project=team.project).values_list("pk", "status"))

    status = await database_sync_to_async(states)()
    assert status.pop(broken) == "failed" and set(status.values()) == {"ready"}


async def _recorder_of_a_run_taken_over(project, scenes: int) -> tuple[list[Scene], RunRecorder, list[str]]:
    """A run of `scenes` new scenes that w2 holds now, and w1's recorder for it, with the list of what it
    was told it lost."""
    created = await database_sync_to_async(_scenes)(project, scenes)
    run = await database_sync_to_async(BatchRun.objects.create)(
        project=project, provider="simulated", status="running", owner="w2"
    )
    recorder = RunRecorder(run, worker="w1", config=EngineConfig(), clock=LoopClock())
    lost: list[str] = []
    recorder.on_lost = lost.append
    return created, recorder, lost


@pytest.mark.django_db(transaction=True)
async def test_a_group_of_a_run_another_worker_took_over_writes_nothing(team):
    project = team.project
    scenes, recorder, lost = await _recorder_of_a_run_taken_over(project, 3)
    failures = [Write("recording the failure", recorder._failed_sync, (s.pk, "boom", None)) for s in scenes]
    results = await database_sync_to_async(recorder._together_sync)(failures)
    assert results == [False, False, False] and lost  # the fence, asked once, holds for the whole group
    statuses = await database_sync_to_async(lambda: set(project.scenes.values_list("status", flat=True)))()
    assert "failed" not in statuses


@pytest.mark.django_db(transaction=True)
async def test_a_group_that_waited_never_takes_the_runs_counts_back(team):
    run = await database_sync_to_async(BatchRun.objects.create)(
        project=team.project, provider="simulated", status="running", owner="w1"
    )
    recorder = RunRecorder(run, worker="w1", config=EngineConfig(), clock=LoopClock())
    earlier, later = timezone.now(), timezone.now() + timedelta(seconds=1)

    def counts(succeeded: int, at) -> dict:
        return {
            "succeeded": succeeded,
            "failed": 0,
            "requests": succeeded,
            "retries": 0,
            "quota_errors": 0,
            "quota_wait_seconds": 0.0,
            "pacing_seconds": 0.0,
            "counts_at": at,
            "eta_at": None,
        }

    # A progress write with newer counts went first; the group's counts were taken before them.
    await database_sync_to_async(recorder._update_run)(counts(5, later))
    await database_sync_to_async(recorder._together_sync)(
        [Write("recording the run's counts", recorder._update_run, (counts(3, earlier),))]
    )
    run = await database_sync_to_async(BatchRun.objects.get)(pk=run.pk)
    assert run.succeeded == 5


@pytest.mark.django_db(transaction=True)
async def test_a_group_rolled_back_by_a_dropped_connection_is_written_again_whole(team, start, monkeypatch):
    await database_sync_to_async(_scenes)(team.project, 24)
    add, together = targets.scene_version_add, RunRecorder._together_sync
    group = {"writing": False, "versions": 0, "dropped": 0}

    def tracked(self, items):
        group.update(writing=True, versions=0)
        try:
            return together(self, items)
        finally:
            group["writing"] = False

    def version_add(**kwargs):
        if group["writing"]:
            group["versions"] += 1
            # The second image of a group: the first one's writes roll back with it.
            if group["versions"] == 2 and not group["dropped"]:
                group["dropped"] += 1
                raise OperationalError("server closed the connection unexpectedly")
        return add(**kwargs)

    monkeypatch.setattr(RunRecorder, "_together_sync", tracked)
    monkeypatch.setattr(targets, "scene_version_add", version_add)
    run = await database_sync_to_async(start)(overrides={"max_concurrency": 24})
    done = await run_execute(run_id=run.pk, worker="w1", provider=simulated(latency=0))
    assert group["dropped"] and (done.status, done.succeeded) == ("completed", 24)

    def attempts():
        return list(GenerationAttempt.objects.filter(run=run).values_list("status", "retry_of_id"))

    # The retried group closed its attempts with the outcomes the rolled-back one had (none left running),
    # and pointed no attempt at a row that rolled back.
    assert await database_sync_to_async(attempts)() == [("succeeded", None)] * 24


async def test_a_write_that_must_come_after_the_queued_ones_waits_for_them():
    database = Database()
    database.gate.clear()
    commits = GroupCommit(alone=database.alone, together=database.together)
    queued = [asyncio.ensure_future(commits.write(name, str, name)) for name in "ab"]
    await asyncio.sleep(0)
    after = asyncio.ensure_future(commits.idle())
    await asyncio.sleep(0.01)
    assert not after.done()  # e.g. handing the run back: the attempts' closing writes must land first
    database.gate.set()
    await after
    assert all(write.done() for write in queued) and database.transactions == [["a", "b"]]


@pytest.mark.django_db(transaction=True)
def test_a_group_reads_the_webhooks_and_adds_the_costs_once_and_loses_none(team, start, groups, settings):
    from asgiref.sync import async_to_sync
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from generation.models import Price
    from webhooks.models import Delivery
    from webhooks.services import endpoint_create

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    Price.objects.create(
        provider="simulated", model="", per_image="0.04", effective=timezone.now().date() - timedelta(days=1)
    )
    endpoint_create(
        project=team.project, url="http://127.0.0.1:9/hook", events=["scene.ready"], user=team.owner
    )
    _scenes(team.project, 30)
    run = start(overrides={"max_concurrency": 30})
    # async_to_sync from this thread: the run's ORM calls run in it too, on the connection captured.
    with CaptureQueriesContext(connection) as captured:
        done = async_to_sync(run_execute)(run_id=run.pk, worker="w1", provider=simulated(latency=0))
    assert done.succeeded == 30 and groups and max(groups) > 1

    costs = list(GenerationAttempt.objects.filter(run=run).values_list("cost", flat=True))
    assert len(costs) == 30 and all(costs) and done.cost == sum(costs)  # every attempt billed to the run
    bodies = [
        json.loads(body)
        for body in Delivery.objects.filter(event="scene.ready").values_list("body", flat=True)
    ]
    # Each event carries its scene as the group wrote it: shown, not still generating.
    assert len(bodies) == 30 and {body["data"]["scene"]["status"] for body in bodies} == {"ready"}
    statements = [query["sql"] for query in captured.captured_queries]
    lookups = [sql for sql in statements if sql.startswith("SELECT") and '"webhooks_endpoint"' in sql]
    run_updates = [sql for sql in statements if sql.startswith('UPDATE "generation_batchrun"')]
    cost_updates = [sql for sql in run_updates if '"cost"' in sql]
    assert len(lookups) < 30 and len(cost_updates) < 30


@pytest.mark.django_db(transaction=True)
def test_a_groups_item_writes_need_no_fence_once_it_holds_the_run_and_retries_still_link(team, start, groups):
    """The run row is locked once at a group's start, so its item writes carry no subquery on the run (each
    cost its compilation and the database's work), and an item's earlier failures are read once a run."""
    from asgiref.sync import async_to_sync
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    scenes = _scenes(team.project, 30)
    earlier = BatchRun.objects.create(project=team.project, provider="simulated", status="completed")
    failed = GenerationAttempt.objects.create(
        run=earlier, scene=scenes[3], number=1, status="failed", started=timezone.now()
    )
    run = start(overrides={"max_concurrency": 30})
    with CaptureQueriesContext(connection) as captured:
        done = async_to_sync(run_execute)(run_id=run.pk, worker="w1", provider=simulated(latency=0))
    assert done.succeeded == 30 and groups and max(groups) > 1

    statements = [query["sql"] for query in captured.captured_queries]
    item_writes = [
        sql
        for sql in statements
        if sql.startswith(('UPDATE "projects_scene"', 'UPDATE "generation_generationattempt"'))
    ]
    fenced = [sql for sql in item_writes if '"generation_batchrun"' in sql]
    # Only the writes that went alone keep the fence: 60 item writes were fenced before.
    assert item_writes and len(fenced) < 15
    inserts = [sql for sql in statements if sql.startswith('INSERT INTO "generation_generationattempt"')]
    assert inserts and not [sql for sql in inserts if "SELECT" in sql]
    retry = GenerationAttempt.objects.get(run=run, scene=scenes[3])
    assert retry.retry_of_id == failed.pk  # the earlier failure, found without a lookup per scene
    others = GenerationAttempt.objects.filter(run=run).exclude(scene=scenes[3])
    assert not others.filter(retry_of__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
async def test_a_group_of_first_requests_of_a_run_another_worker_took_over_marks_no_scene(team):
    project = team.project
    scenes, recorder, _ = await _recorder_of_a_run_taken_over(project, 3)
    jobs = [Job(key=s.pk, request=ImageRequest(prompt=s.prompt)) for s in scenes]
    writes = [
        Write("recording the attempt", recorder._attempt_started_sync, (job, 1, None), job.key)
        for job in jobs
    ]
    assert await database_sync_to_async(recorder._together_sync)(writes) == [False, False, False]
    statuses = await database_sync_to_async(lambda: set(project.scenes.values_list("status", flat=True)))()
    assert "generating" not in statuses


def _statements(captured, *starts: str) -> list[str]:
    return [query["sql"] for query in captured.captured_queries if query["sql"].startswith(starts)]


@pytest.mark.django_db(transaction=True)
def test_a_group_inserts_its_rows_together_and_marks_and_locks_its_scenes_once(team, start, groups):
    """A group's first requests mark their scenes in one statement and insert their attempts in one; its
    images lock their scenes (reading the last version numbers) in one and insert the versions in one."""
    from asgiref.sync import async_to_sync
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    scenes = _scenes(team.project, 40)
    run = start(overrides={"max_concurrency": 40, "start_concurrency": 40})
    with CaptureQueriesContext(connection) as captured:
        done = async_to_sync(run_execute)(run_id=run.pk, worker="w1", provider=simulated(latency=0))
    assert (done.status, done.succeeded) == ("completed", 40) and max(groups) > 1

    attempts = _statements(captured, 'INSERT INTO "generation_generationattempt"')
    versions = _statements(captured, 'INSERT INTO "generation_sceneversion"')
    marked = [sql for sql in _statements(captured, 'UPDATE "projects_scene"') if "generating" in sql]
    locks = [
        sql
        for sql in _statements(captured, "SELECT")
        if 'FROM "projects_scene"' in sql and '"generation_sceneversion"' in sql
    ]
    # Alone, each of the 40 scenes would cost one of each.
    assert len(attempts) < 30 and len(versions) < 30 and len(marked) < 30 and len(locks) < 30
    rows = GenerationAttempt.objects.filter(run=run)
    assert rows.count() == 40 and set(rows.values_list("status", flat=True)) == {"succeeded"}
    linked = SceneVersion.objects.filter(attempt__run=run, number=1)
    assert sorted(linked.values_list("scene_id", flat=True)) == sorted(s.pk for s in scenes)
    assert set(Scene.objects.filter(pk__in=[s.pk for s in scenes]).values_list("status", flat=True)) == {
        "ready"
    }


@pytest.mark.django_db(transaction=True)
async def test_a_group_of_first_requests_leaves_out_a_scene_deleted_meanwhile(team):
    project = team.project
    scenes = await database_sync_to_async(_scenes)(project, 3)
    run = await database_sync_to_async(BatchRun.objects.create)(
        project=project, provider="simulated", status="running", owner="w1"
    )
    recorder = RunRecorder(run, worker="w1", config=EngineConfig(), clock=LoopClock())
    await database_sync_to_async(scenes[1].delete)()
    jobs = [Job(key=s.pk, request=ImageRequest(prompt=s.prompt)) for s in scenes]
    writes = [
        Write("recording the attempt", recorder._attempt_started_sync, (job, 1, None), job.key)
        for job in jobs
    ]
    assert await database_sync_to_async(recorder._together_sync)(writes) == [True, False, True]

    def written():
        attempts = set(GenerationAttempt.objects.filter(run=run).values_list("scene_id", flat=True))
        return attempts, dict(project.scenes.values_list("pk", "status"))

    attempts, statuses = await database_sync_to_async(written)()
    assert attempts == {scenes[0].pk, scenes[2].pk}
    assert statuses == {scenes[0].pk: "generating", scenes[2].pk: "generating"}
    assert recorder.attempt_ids.keys() == {scenes[0].pk, scenes[2].pk}  # once committed


@pytest.mark.django_db(transaction=True)
def test_a_group_closes_its_attempts_and_shows_its_images_in_one_statement_each(team, start, groups):
    """The images of a group close their attempts, each with its own time and latency, in one statement,
    and show on their scenes, each its own image, in another: alone, each image cost one of each."""
    from asgiref.sync import async_to_sync
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    scenes = _scenes(team.project, 40)
    run = start(overrides={"max_concurrency": 40, "start_concurrency": 40})
    with CaptureQueriesContext(connection) as captured:
        done = async_to_sync(run_execute)(run_id=run.pk, worker="w1", provider=simulated(latency=0))
    assert (done.status, done.succeeded) == ("completed", 40) and max(groups) > 1

    closes = [
        sql for sql in _statements(captured, 'UPDATE "generation_generationattempt"') if "succeeded" in sql
    ]
    shown = [sql for sql in _statements(captured, 'UPDATE "projects_scene"') if "ready" in sql]
    assert len(closes) < 30 and len(shown) < 30
    attempts = GenerationAttempt.objects.filter(run=run)
    assert set(attempts.values_list("status", flat=True)) == {"succeeded"}
    assert all(a.finished >= a.started and a.latency_ms is not None for a in attempts)
    versions = dict(SceneVersion.objects.filter(attempt__run=run).values_list("scene_id", "image"))
    shows = {s.pk: (s.status, s.image.name, s.claimed_by) for s in Scene.objects.filter(project=team.project)}
    assert shows == {scene.pk: ("ready", versions[scene.pk], None) for scene in scenes}
    assert len(set(versions.values())) == 40  # each scene its own image
