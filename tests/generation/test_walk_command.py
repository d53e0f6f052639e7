"""Issue 14's walk, the command line: counts that add up, clear refusals, titles people type, and log
lines that neither break the progress bar nor print twice."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management.base import CommandError

from projects import services
from projects.models import Scene
from tests.conftest import png_bytes
from tests.generation.conftest import run_command

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_simulated")]
ROOT = Path(__file__).resolve().parents[2]


def _generated(team, count: int) -> list[Scene]:
    scenes = [services.scene_create(project=team.project, prompt=f"Scene {i}") for i in range(count)]
    for scene in scenes:
        scene.image.save("done.png", ContentFile(png_bytes()), save=False)
        scene.status = "ready"
        scene.save()
    return scenes


def test_with_nothing_to_do_the_bar_counts_each_skip_once(team):
    _generated(team, 14)
    output = run_command(str(team.project.pk), "--provider", "simulated")
    draws = [part for part in output.split("\r") if part.startswith("[")]
    assert draws and all(" 14/14 done" in d or "0/14 done" in d for d in draws), draws
    assert not [d for d in draws if "15/14" in d or "28/14" in d or "28 skipped" in d], draws
    assert all(len(d.split("]")[0]) == 31 for d in draws), "the bar must never grow past its width"
    assert "Nothing to generate: all 14 scenes were skipped" in output


def test_an_unknown_scene_number_is_named_with_the_projects_size(team):
    _generated(team, 14)
    with pytest.raises(CommandError, match=r"^no scene 99 \(the project has 14 scenes\)$"):
        run_command(str(team.project.pk), "--scenes", "99")


def test_titles_match_case_insensitively_and_ambiguous_ones_are_listed(team):
    _generated(team, 1)
    assert "Nothing to generate" in run_command("the tale", "--provider", "simulated")
    other = services.project_create(title="THE TALE", user=team.owner)
    with pytest.raises(CommandError) as ambiguous:
        run_command("the tale")
    assert f"{team.project.pk}: The Tale" in str(ambiguous.value)
    assert f"{other.pk}: THE TALE" in str(ambiguous.value)


def test_log_lines_go_above_the_bar_not_through_it(team, monkeypatch):
    _generated(team, 2)
    services.scene_create(project=team.project, prompt="")  # one skip, logged as the run plans
    output = run_command(str(team.project.pk), "--provider", "simulated")
    # What a terminal shows: each \r returns to the line start; the last draw on a line is what stays.
    shown = [line.split("\r")[-1] for line in output.split("\n")]
    logged = [line for line in output.split("\n") if "Skipping Scene 3" in line]
    assert logged, output
    for line in logged:
        visible = line.split("\r")[-1]
        assert visible.lstrip().split(" ")[2] == "INFO", f"a log line mixed with the bar: {line!r}"
        assert "[" not in visible.split("INFO")[0]
    assert any(s.startswith("[") for s in shown), "the bar is drawn again below the log"


def test_under_daphnes_logging_set_up_a_generation_line_prints_once():
    # runstudio runs Daphne's CLI, which calls logging.basicConfig() after Django configured logging.
    script = (
        "import django, logging; django.setup(); "
        "logging.basicConfig(level=logging.INFO, format='%(message)s'); "
        "logging.getLogger('generation.runs').info('one line'); "
        "logging.getLogger('django.request').warning('one warning')"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "scenestudio.settings"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("one line") == 1, done.stderr
    assert done.stderr.count("one warning") == 1, done.stderr


def test_the_generation_loggers_still_reach_pytests_capture(caplog):
    with caplog.at_level(logging.INFO, logger="generation"):
        logging.getLogger("generation.services").info("seen")
    assert "seen" in caplog.text
