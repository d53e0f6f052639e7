from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from generation.management.commands.generate import parse_positions
from generation.models import BatchRun
from generation.runs import providers as factory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_simulated(settings):
    factory._CACHE.clear()
    settings.GENERATION_PROVIDERS = {**settings.GENERATION_PROVIDERS, "simulated": {"latency": 0.001}}
    settings.GENERATION_ENGINE = {**settings.GENERATION_ENGINE, "backoff_base": 0.001, "jitter": 0.0}
    yield
    factory._CACHE.clear()


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("generate", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


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
    from projects import services

    project, scenes, _ = story
    scenes[0].characters.add(services.character_save(project=project, name="Ram"))
    with pytest.raises(CommandError, match="Ram"):
        run_command(str(project.pk))
    output = run_command(str(project.pk), "--characters", "--provider", "simulated")
    assert "Successfully generated all 1 character reference!" in output


def test_it_names_an_unknown_project():
    with pytest.raises(CommandError, match="No project"):
        run_command("999")
