"""Store failures in one process: a full or read-only media directory, database blips and outages
around the recorder's writes. Each run must end telling the truth, with nothing half-written."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError

from generation.models import BatchRun, GenerationAttempt
from generation.runs import storage as storage_module
from generation.runs.execution import run_execute
from generation.runs.recorder import RunRecorder
from generation.runs.targets import SceneTarget
from projects import services as project_services
from projects.models import Scene
from tests.faults.checks import assert_counts_match_rows, assert_nothing_lost
from tests.faults.storage import Faults
from tests.generation.conftest import simulated

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

ONE_AT_A_TIME = {"max_concurrency": 1, "start_concurrency": 1, "min_concurrency": 1}


@pytest.fixture
def project(team):
    for i in range(1, 7):
        project_services.scene_create(project=team.project, prompt=f"Scene prompt {i}")
    return team.project


@pytest.fixture
def failing_storage(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tests.faults.storage.FailingStorage"},
    }
    yield Faults
    Faults.saves_left, Faults.errno = None, errno.ENOSPC


@pytest.fixture(autouse=True)
def quick_db_retries(monkeypatch):
    monkeypatch.setattr(storage_module, "DB_RETRY_DELAYS", (0.01, 0.02), raising=False)


async def run_project(start, project, provider, events=None, **overrides):
    run = await database_sync_to_async(start)(project=project, overrides=overrides)
    listener = events.append if events is not None else None
    return await run_execute(run_id=run.pk, worker="w1", provider=provider, listener=listener)


def scene_states(project) -> list[tuple[str, str]]:
    return list(project.scenes.order_by("position").values_list("status", "last_error"))


@pytest.mark.parametrize(("code", "words"), [(errno.ENOSPC, "disk full"), (errno.EROFS, "read-only media")])
async def test_a_full_or_read_only_disk_fails_the_scene_with_the_reason_and_stops_the_run(
    project, start, failing_storage, settings, code, words
):
    failing_storage.saves_left, failing_storage.errno = 2, code
    provider, events = simulated(), []
    run = await run_project(start, project, provider, events, **ONE_AT_A_TIME)

    states = await database_sync_to_async(scene_states)(project)
    assert states[:3] == [("ready", ""), ("ready", ""), ("failed", f"could not store the image: {words}")]
    # Stopped at the first image it could not keep: the request sent while that image was being saved
    # may end the same way; the rest are pending, resumable once the disk has room.
    rest = states[3:]
    in_flight = [s for s in rest if s[0] == "failed"]
    assert in_flight in ([], [("failed", f"could not store the image: {words}")])
    assert [s for s, _ in rest].count("pending") == len(rest) - len(in_flight)
    assert provider.requests == 3 + len(in_flight)  # no quota spent on the others
    assert (run.status, run.succeeded, run.failed) == ("failed", 2, 1 + len(in_flight))
    assert words in run.reason and "Successfully" not in run.summary
    finished = [e for e in events if e["type"] == "run.finished"]
    assert finished and finished[-1]["summary"] == run.summary
    await database_sync_to_async(assert_nothing_lost)(project, Path(settings.MEDIA_ROOT), resumable=True)


async def test_a_database_blip_while_recording_the_image_is_retried_on_a_new_connection(
    project, start, monkeypatch, settings
):
    real, failures = RunRecorder._succeeded_sync, iter([True, True])

    def flaky(self, success, *counts):
        if next(failures, False):
            raise OperationalError("server closed the connection unexpectedly")
        return real(self, success, *counts)

    monkeypatch.setattr(RunRecorder, "_succeeded_sync", flaky)
    run = await run_project(start, project, simulated())
    assert (run.status, run.succeeded, run.failed) == ("completed", 6, 0)
    assert run.summary == "Successfully generated all 6 scenes!"
    await database_sync_to_async(assert_nothing_lost)(project, Path(settings.MEDIA_ROOT), resumable=False)


async def test_a_database_that_stays_down_fails_the_scene_with_the_reason_and_leaves_no_file(
    project, start, monkeypatch, settings
):
    real, calls = RunRecorder._succeeded_sync, {"n": 0}

    def down_for_the_third(self, success, *counts):
        calls["n"] += 1
        if success.job.request.prompt == "Scene prompt 3":
            raise OperationalError("the database system is shutting down")
        return real(self, success, *counts)

    monkeypatch.setattr(RunRecorder, "_succeeded_sync", down_for_the_third)
    run = await run_project(start, project, simulated(), **ONE_AT_A_TIME)
    states = await database_sync_to_async(scene_states)(project)
    assert states[2][0] == "failed"
    assert states[2][1].startswith("could not store the image: the database is unavailable")
    assert [s for s, _ in states].count("ready") == 5
    assert (run.status, run.succeeded, run.failed) == ("completed", 5, 1)
    assert "1 failed" in run.summary
    await database_sync_to_async(assert_nothing_lost)(project, Path(settings.MEDIA_ROOT), resumable=False)


async def test_no_request_is_sent_without_its_attempt_row(project, start, monkeypatch, settings):
    def down(self, job, attempt_no, *counts):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(RunRecorder, "_attempt_started_sync", down)
    provider = simulated()
    run = await run_project(start, project, provider, backoff_base=0.01)
    assert provider.requests == 0
    assert not await database_sync_to_async(GenerationAttempt.objects.exists)()
    states = await database_sync_to_async(scene_states)(project)
    assert {s for s, _ in states} == {"failed"}
    assert all(r.startswith("could not record the attempt: the database is unavailable") for _, r in states)
    assert run.status == "completed" and run.requests == 0
    await database_sync_to_async(assert_nothing_lost)(project, Path(settings.MEDIA_ROOT), resumable=False)


async def test_a_blip_while_recording_the_attempt_is_retried_and_the_request_sent_once(
    project, start, monkeypatch, settings
):
    real, failures = RunRecorder._attempt_started_sync, iter([True, True, True])

    def flaky(self, job, attempt_no, *counts):
        if next(failures, False):
            raise OperationalError("server closed the connection unexpectedly")
        return real(self, job, attempt_no, *counts)

    monkeypatch.setattr(RunRecorder, "_attempt_started_sync", flaky)
    provider = simulated()
    run = await run_project(start, project, provider)
    assert (run.status, run.succeeded, provider.requests) == ("completed", 6, 6)
    await database_sync_to_async(assert_counts_match_rows)(run)
    assert await database_sync_to_async(Scene.objects.filter(status="ready").count)() == 6
    assert await database_sync_to_async(BatchRun.objects.filter(status="completed").count)() == 1


async def test_a_failure_the_database_was_down_for_is_written_when_the_run_ends(
    project, start, monkeypatch, settings
):
    """The job_failed hook could not write Scene 3's failure; the run's end (the database back) must: the
    scene ends failed with the provider's reason, not back in the queue with none."""

    def down(self, key, reason, *counts):
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(RunRecorder, "_failed_sync", down)
    third = project.scenes.filter(position=3)
    await database_sync_to_async(third.update)(prompt="Scene prompt 3 is forbidden")
    run = await run_project(start, project, simulated(safety_word="forbidden"), **ONE_AT_A_TIME)
    states = await database_sync_to_async(scene_states)(project)
    assert states[2][0] == "failed", states[2]
    assert states[2][1], "the failed scene says why"
    assert [s for s, _ in states].count("ready") == 5
    assert (run.status, run.succeeded, run.failed) == ("completed", 5, 1)


async def test_counts_a_failed_commit_rolled_back_are_written_again_by_its_retry(
    project, start, monkeypatch, settings
):
    """The database drops the last image's transaction after the run's counts were written in it; the
    retry must write them again, so no event shows more than a reload of the row would."""
    real_record, failures = SceneTarget.record_success, iter([True])

    def dropped_after_the_counts(self, success):
        recorded = real_record(self, success)
        if success.job.request.prompt == "Scene prompt 6" and next(failures, False):
            raise OperationalError("server closed the connection unexpectedly")
        return recorded

    real_publish, seen = RunRecorder.publish, []

    async def publish(self, event_type, **payload):
        if event_type == "scene.succeeded":
            row = await database_sync_to_async(BatchRun.objects.values("succeeded").get)(pk=self.run.pk)
            seen.append((payload["item"]["position"], payload["counts"]["succeeded"], row["succeeded"]))
        await real_publish(self, event_type, **payload)

    monkeypatch.setattr(SceneTarget, "record_success", dropped_after_the_counts)
    monkeypatch.setattr(RunRecorder, "publish", publish)
    run = await run_project(start, project, simulated(), **ONE_AT_A_TIME)
    assert (run.status, run.succeeded) == ("completed", 6)
    assert sorted(position for position, _, _ in seen) == [1, 2, 3, 4, 5, 6]
    assert all(shown <= stored for _, shown, stored in seen), f"(scene, shown, stored): {seen}"
