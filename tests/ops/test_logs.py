"""Structured logs: run, project and scene ids on generation lines; LOG_FORMAT=json prints JSON lines."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from pythonjsonlogger.json import JsonFormatter

from generation.providers.simulated import SimulatedProvider
from generation.runs import services
from generation.runs.execution import run_execute
from ops.logs import RunContext
from projects import services as project_services

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(RunContext())
    logger = logging.getLogger("generation")
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


@pytest.mark.django_db(transaction=True)
def test_every_generation_line_of_a_run_names_the_run_and_project_and_scene_lines_the_scene(team, json_lines):
    scenes = [project_services.scene_create(project=team.project, prompt=p) for p in ("A", "B forbidden")]
    run, _ = services.run_start(project=team.project, user=team.editor, overrides={"backoff_base": 0.01})
    async_to_sync(run_execute)(
        run_id=run.pk, worker="w1", provider=SimulatedProvider(latency=0.01, safety_word="forbidden")
    )
    lines = json_lines()
    assert lines and all(line["run_id"] == run.pk and line["project_id"] == team.project.pk for line in lines)
    per_scene = [line for line in lines if line["message"].startswith(("Scene 1 done", "Skipping Scene 2"))]
    assert {line["scene_id"] for line in per_scene} == {scenes[0].pk, scenes[1].pk}


def test_log_format_json_prints_one_object_a_line(tmp_path):
    script = "import logging; logging.getLogger('generation.test').warning('hello %s', 'there')"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env={
            **__import__("os").environ,
            "LOG_FORMAT": "json",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert (
        line["message"] == "hello there"
        and line["name"] == "generation.test"
        and line["levelname"] == "WARNING"
    )
