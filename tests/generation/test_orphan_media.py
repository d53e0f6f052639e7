"""Orphan clean-up deletes only images no row points to: never a character's further reference views."""

from __future__ import annotations

import os
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from generation.runs.media import orphan_media_delete
from projects import services as project_services
from projects.characters import character_reference_add
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


def _age(path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_it_keeps_a_characters_further_reference_views(team, settings):
    character = project_services.character_save(project=team.project, name="Gopal", description="a jester")
    upload = SimpleUploadedFile("profile.png", png_bytes(color="blue"), content_type="image/png")
    extra = character_reference_add(character=character, image=upload, label="profile")
    _age(extra.image.path, 7200)

    assert orphan_media_delete(grace_seconds=3600) == []
    assert os.path.exists(extra.image.path)


def test_it_deletes_an_image_no_row_points_to(team, settings):
    orphan = settings.MEDIA_ROOT / f"projects/{team.project.pk}/scenes/0123456789abcdef0123456789abcdef.png"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(png_bytes())
    _age(orphan, 7200)

    assert orphan_media_delete(grace_seconds=3600) == [f"projects/{team.project.pk}/scenes/{orphan.name}"]
    assert not orphan.exists()


def _plant(settings, project_id: int, name: str, age: float):
    path = settings.MEDIA_ROOT / f"projects/{project_id}/scenes/{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes())
    _age(path, age)
    return path


@pytest.mark.django_db(transaction=True)
def test_a_finished_run_deletes_what_a_dead_worker_of_it_left_behind(team, settings):
    from asgiref.sync import async_to_sync
    from django.utils import timezone

    from generation.models import BatchRun
    from generation.providers.simulated import SimulatedProvider
    from generation.runs import services
    from generation.runs.execution import run_execute

    project_services.scene_create(project=team.project, prompt="A river")
    run, _ = services.run_start(project=team.project, user=team.editor)
    # The run began two minutes ago on a worker that died: its stored-but-unrecorded image is a minute old.
    BatchRun.objects.filter(pk=run.pk).update(started=timezone.now() - timezone.timedelta(seconds=120))
    dead_workers = _plant(settings, team.project.pk, "a" * 32, age=60)
    before_the_run = _plant(settings, team.project.pk, "b" * 32, age=600)  # cleanup_media's, not the run's
    just_written = _plant(settings, team.project.pk, "c" * 32, age=1)  # may still be committing elsewhere

    async_to_sync(run_execute)(run_id=run.pk, worker="w2", provider=SimulatedProvider(latency=0.01))

    assert not dead_workers.exists()
    assert before_the_run.exists() and just_written.exists()
    assert BatchRun.objects.get(pk=run.pk).succeeded == 1


@pytest.mark.django_db(transaction=True)
def test_a_run_taken_over_at_once_deletes_what_its_dead_worker_saved_after_its_last_beat(team, settings):
    """The dead worker may save an image seconds after its last heartbeat (its beats wait their turn
    behind its writes); the new owner takes over just after the lease lapses and may finish at once."""
    from asgiref.sync import async_to_sync
    from django.utils import timezone

    from generation.models import BatchRun
    from generation.providers.simulated import SimulatedProvider
    from generation.runs import services
    from generation.runs.execution import run_execute

    project_services.scene_create(project=team.project, prompt="A river")
    run, _ = services.run_start(project=team.project, user=team.editor)
    now = timezone.now()
    BatchRun.objects.filter(pk=run.pk).update(
        status=BatchRun.Status.RUNNING,
        owner="w1",
        started=now - timezone.timedelta(seconds=60),
        heartbeat=now - timezone.timedelta(seconds=BatchRun.LEASE_SECONDS + 0.2),
    )
    saved_after_the_beat = _plant(settings, team.project.pk, "d" * 32, age=BatchRun.LEASE_SECONDS - 2)
    just_written = _plant(settings, team.project.pk, "c" * 32, age=1)  # a request's, still committing

    async_to_sync(run_execute)(run_id=run.pk, worker="w2", provider=SimulatedProvider(latency=0.01))

    stored = BatchRun.objects.get(pk=run.pk)
    assert (stored.owner, stored.succeeded) == ("w2", 1)
    assert not saved_after_the_beat.exists()
    assert just_written.exists()
