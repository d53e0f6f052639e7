from __future__ import annotations

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from django.core.management.base import CommandError
from django.db import connection

from generation.management.commands.generate import parse_positions
from generation.models import BatchRun
from generation.quota.registry import limiter_for as real_limiter_for
from generation.runs import execution
from generation.runs import services as run_services
from generation.runs.execution import run_execute
from generation.runs.services import run_claim
from projects import services
from tests.generation.conftest import run_command, simulated

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_simulated")]


def test_it_parses_scene_ranges():
    assert parse_positions("1-3, 9") == {1, 2, 3, 9}
    for bad in ["x", "5-2", "0-1"]:
        with pytest.raises(CommandError):
            parse_positions(bad)


def test_it_generates_the_chosen_scenes_with_a_progress_bar_and_the_summary(story):
    project, scenes, _ = story
    output = run_command(str(project.pk), "--scenes", "1-3", "--provider", "simulated")
    assert "[" in output and "3/3 done" in output
    assert output.strip().endswith("Generated 2 of 3 scenes (1 skipped)")
    assert BatchRun.objects.get().provider == "simulated"


def test_it_exits_non_zero_when_every_scene_failed(story, settings):
    project, *_ = story
    settings.GENERATION_PROVIDERS["simulated"] = {"latency": 0.001, "auth_failure": True}
    with pytest.raises(SystemExit) as exited:
        run_command(project.title, "--provider", "simulated")
    assert exited.value.code == 1


def test_it_refuses_with_the_preflight_reason(story):
    project, scenes, _ = story
    scenes[0].characters.add(services.character_save(project=project, name="Ram"))
    with pytest.raises(CommandError, match="Ram"):
        run_command(str(project.pk))
    output = run_command(str(project.pk), "--characters", "--provider", "simulated")
    # Issue 14 (6): "all 1 character reference" was the defect; one is "the one".
    assert "Successfully generated the one character reference!" in output


def test_it_names_an_unknown_project():
    with pytest.raises(CommandError, match="No project"):
        run_command("999")


def test_it_follows_the_run_when_an_idle_worker_claims_it_first(story, monkeypatch):
    """The run's start wakes the workers on commit: one that claims it before the command does executes
    it, and the command shows its progress and outcome instead of crashing."""
    project, *_ = story
    threads: list[threading.Thread] = []

    def execute_elsewhere(run_id: int) -> None:
        try:
            asyncio.run(run_execute(run_id=run_id, worker="idle-worker", provider=simulated(latency=0.05)))
        finally:
            connection.close()

    async def an_idle_worker_wakes(run_id: int) -> None:
        assert await database_sync_to_async(run_claim)(run_id=run_id, worker="idle-worker")
        threads.append(threading.Thread(target=execute_elsewhere, args=(run_id,)))
        threads[-1].start()

    monkeypatch.setattr(run_services, "wake_worker", an_idle_worker_wakes)
    try:
        output = run_command(str(project.pk), "--provider", "simulated")
    finally:
        [thread.join(10) for thread in threads]
    run = BatchRun.objects.get()
    assert run.owner == "idle-worker" and run.status == "completed"
    assert "6/6 done" in output
    assert output.strip().endswith("Generated 4 of 6 scenes (2 skipped)")


def test_it_paces_with_the_credentials_shared_limiter(story, monkeypatch):
    """The command sends through the limiter every worker shares for the credential (Redis with several
    processes), not one of its own that would know nothing of their sends."""
    project, *_ = story
    shared = []

    def limiter_for(provider, config):
        shared.append(provider.credential)
        return real_limiter_for(provider, config)

    monkeypatch.setattr(execution, "limiter_for", limiter_for)
    run_command(str(project.pk), "--scenes", "1", "--provider", "simulated")
    assert shared == ["simulated"]


def test_it_records_the_user_named_with_as_not_the_projects_owner(story, team):
    project, *_ = story
    run_command(str(project.pk), "--scenes", "1", "--provider", "simulated", "--as", team.editor.username)
    assert BatchRun.objects.get().requested_by == team.editor


def test_it_records_the_operating_system_user_when_the_studio_knows_them(story, team, monkeypatch):
    project, *_ = story
    monkeypatch.setattr("getpass.getuser", lambda: team.editor.username)
    run_command(str(project.pk), "--scenes", "1", "--provider", "simulated")
    assert BatchRun.objects.get().requested_by == team.editor


def test_it_records_nobody_rather_than_someone_it_did_not_hear_from(story, team, monkeypatch):
    project, *_ = story
    monkeypatch.setattr("getpass.getuser", lambda: "an-os-account-the-studio-does-not-have")
    run_command(str(project.pk), "--scenes", "1", "--provider", "simulated")
    assert BatchRun.objects.get().requested_by is None


@pytest.mark.parametrize("who", ["viewer", "outsider", "nobody"])
def test_it_refuses_to_act_as_someone_who_may_not_generate(story, team, who):
    project, *_ = story
    name = "no-such-user" if who == "nobody" else team.user(who).username
    with pytest.raises(CommandError, match=f"{name} cannot start runs"):
        run_command(str(project.pk), "--provider", "simulated", "--as", name)
    assert not BatchRun.objects.exists()
