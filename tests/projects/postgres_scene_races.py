"""Scene edits racing on PostgreSQL: run by test_concurrent_scene_edits.py in a subprocess whose
DATABASE_URL points at a throwaway PostgreSQL (not collected on its own: the name has no test_ prefix).

Every operation that appends or renumbers takes the project row lock, so under any interleaving the
positions stay 1..N and a lost race (the scene was deleted meanwhile) is a ValidationError, never a 500.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from projects import services
from projects.models import Scene

THREADS = 12
SERVICE_OPERATIONS = 200
VIEW_OPERATIONS = 48

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL=postgres://… (see test_concurrent_scene_edits.py)")


def positions(project) -> list[int]:
    return list(project.scenes.order_by("position").values_list("position", flat=True))


def run_in_threads(operation: Callable[[random.Random], None], total: int) -> tuple[list[str], int]:
    """`total` operations spread over THREADS threads that start together; unexpected errors and the
    number of clear refusals (ValidationError)."""
    errors: list[str] = []
    refused = [0]
    barrier = threading.Barrier(THREADS)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            barrier.wait(timeout=30)
            for _ in range(total // THREADS + (seed < total % THREADS)):
                try:
                    operation(rng)
                except ValidationError:
                    refused[0] += 1
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads), "a thread is still running"
    return errors, refused[0]


def a_scene(project, rng: random.Random) -> Scene | None:
    ids = list(project.scenes.values_list("pk", flat=True))
    return Scene.objects.filter(pk=rng.choice(ids)).first() if ids else None


def test_mixed_scene_operations_keep_positions_contiguous(team):
    project = team.project
    for index in range(30):
        services.scene_create(project=project, prompt=f"Opening {index}")

    def operation(rng: random.Random) -> None:
        kind = rng.choice(["create", "insert", "move", "move", "move", "delete", "delete", "import", "edit"])
        if kind == "create":
            services.scene_create(project=project, prompt="New scene")
        elif kind == "insert":
            services.scene_create(project=project, prompt="Inserted", position=rng.randint(1, 40))
        elif kind == "import":
            services.story_import(project=project, text="Imported one.\n\nImported two.")
        elif (scene := a_scene(project, rng)) is None:
            return
        elif kind == "move":
            services.scene_move(scene=scene, to_position=rng.randint(-2, 45))
        elif kind == "delete":
            services.scene_delete(scene=scene)
        else:
            services.scene_update(scene=scene, prompt=f"Edited {rng.random()}", title="Edited")

    errors, refused = run_in_threads(operation, SERVICE_OPERATIONS)
    assert errors == []
    found = positions(project)
    assert found == list(range(1, len(found) + 1))
    print(f"services: {SERVICE_OPERATIONS} operations, {refused} refused as deleted meanwhile")


def test_scene_pages_racing_each_other_never_fail(team):
    project = team.project
    for index in range(20):
        services.scene_create(project=project, prompt=f"Opening {index}")
    local = threading.local()

    def operation(rng: random.Random) -> None:
        if not hasattr(local, "client"):
            local.client = Client()
            local.client.force_login(team.editor)
        kind = rng.choice(["create", "move", "delete", "import", "edit"])
        scene = a_scene(project, rng)
        if kind == "create" or scene is None:
            response = local.client.post(reverse("scene_create", args=[project.pk]), {"prompt": "Via page"})
        elif kind == "import":
            url = reverse("story_import", args=[project.pk])
            response = local.client.post(
                url, {"text": "Page one.\n\nPage two.", "fmt": "auto", "mode": "append"}
            )
        else:
            name = {"move": "scene_move", "delete": "scene_delete", "edit": "scene_edit"}[kind]
            data = {"to": rng.randint(1, 30)} if kind == "move" else {"prompt": "Edited", "title": "E"}
            response = local.client.post(reverse(name, args=[project.pk, scene.pk]), data)
        # 404: the scene was deleted before the page looked it up; 302 with a message otherwise.
        assert response.status_code in {302, 404}, response.status_code

    errors, _ = run_in_threads(operation, VIEW_OPERATIONS)
    assert errors == []
    found = positions(project)
    assert found == list(range(1, len(found) + 1))


@pytest.mark.parametrize(
    "text",
    [
        '[{"prompt": "a\\u0000b"}]',
        '[{"prompt": "x", "title": "%s"}]' % ("t" * 201),
        '[{"prompt": "\\ud800"}]',
    ],
)
def test_postgres_refuses_unstorable_stories_the_way_sqlite_does(team, text):
    from projects.importers import StoryFormatError

    services.scene_create(project=team.project, prompt="Kept")
    with pytest.raises(StoryFormatError):
        services.story_import(project=team.project, text=text, mode="replace")
    assert list(team.project.scenes.values_list("prompt", flat=True)) == ["Kept"]


def test_rows_each_get_their_own_values_in_one_statement_on_postgresql(team):
    """update_each on PostgreSQL, where a CASE of parameters is text unless cast: times, numbers, NULLs
    and file names land typed, each row its own, and the queryset's filter still applies."""
    from datetime import timedelta

    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from generation.models import BatchRun, GenerationAttempt
    from projects.updates import update_each

    scenes = [services.scene_create(project=team.project, prompt=f"P{n}") for n in range(3)]
    run = BatchRun.objects.create(project=team.project, provider="simulated", status="running")
    now = timezone.now()
    attempts = [
        GenerationAttempt.objects.create(run=run, scene=s, number=1, status="running", started=now)
        for s in scenes
    ]
    GenerationAttempt.objects.filter(pk=attempts[2].pk).update(status="interrupted")
    closes = {
        a.pk: {
            "finished": now + timedelta(seconds=n),
            "latency_ms": 100 * n,
            "http_status": [None, 500, 502][n],
        }
        for n, a in enumerate(attempts)
    }
    with CaptureQueriesContext(connection) as captured:
        updated = update_each(GenerationAttempt.objects.filter(status="running"), closes, status="failed")
    assert updated == 2 and len(captured.captured_queries) == 1
    rows = {a.pk: a for a in GenerationAttempt.objects.filter(run=run)}
    for n, attempt in enumerate(attempts[:2]):
        row = rows[attempt.pk]
        assert (row.status, row.finished, row.latency_ms, row.http_status) == (
            "failed",
            now + timedelta(seconds=n),
            100 * n,
            [None, 500][n],
        )
    assert (rows[attempts[2].pk].status, rows[attempts[2].pk].finished) == ("interrupted", None)

    images = {s.pk: f"projects/{team.project.pk}/scenes/{s.pk}.png" for s in scenes}
    assert Scene.objects.mark_ready_each(images) == 3
    assert {s.pk: (s.status, s.image.name) for s in Scene.objects.filter(pk__in=images)} == {
        pk: ("ready", image) for pk, image in images.items()
    }
