"""The database work per generated scene is pinned: a run of 2N scenes may cost only a bounded number of
queries per scene more than a run of N (bench/scale.py measures what each of them costs in CPU)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation.providers.simulated import SimulatedProvider
from generation.runs import services
from generation.runs.execution import run_execute
from projects import services as project_services
from projects.models import Scene

pytestmark = pytest.mark.django_db(transaction=True)

SCENES = 20
# Per scene, 12: BEGIN, the scene marked generating (its lock), the attempt row (its retry_of read once
# a run), the run's counts, COMMIT; then BEGIN, the run's counts and the attempt's cost (the
# lease's lock), the scene locked with its last version number, the version, the scene marked ready, the
# webhook outbox lookup, the attempt's outcome, COMMIT. 18 before they were cut; lower it when one goes.
QUERIES_PER_SCENE = 12


def _start(team, title: str, scenes: int):
    project = project_services.project_create(title=title, user=team.owner)
    Scene.objects.bulk_create(
        Scene(project=project, position=n, prompt=f"Scene {n}") for n in range(1, scenes + 1)
    )
    run, _ = services.run_start(project=project, user=team.owner)
    return run


def _execute(run) -> None:
    # async_to_sync from this thread: the ORM calls of the run run in it too, on the connection counted.
    done = async_to_sync(run_execute)(run_id=run.pk, worker="w1", provider=SimulatedProvider(latency=0))
    assert (done.status, done.succeeded) == ("completed", run.total)


def test_each_generated_scene_costs_a_bounded_number_of_queries(team, django_assert_max_num_queries):
    small, large = _start(team, "Small", SCENES), _start(team, "Large", 2 * SCENES)
    with CaptureQueriesContext(connection) as baseline:
        _execute(small)
    with django_assert_max_num_queries(len(baseline) + QUERIES_PER_SCENE * SCENES):
        _execute(large)
