"""A real media directory that fills up or turns read-only mid-run: a small tmpfs mounted over MEDIA_ROOT
(root only; tests/faults/test_store.py covers the same with a storage that fails on demand)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from generation.providers.base import ImageRequest, ImageResult
from generation.providers.simulated import SimulatedProvider
from generation.runs.execution import run_execute
from projects import services as project_services
from tests.faults.checks import assert_nothing_lost, image_files
from tests.support.unavailable import unavailable

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

SCENES = 20
# Pages of 4 KiB: one per image file, so this holds a handful of the simulated provider's images.
TMPFS_SIZE = "32k"


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def small_media(settings) -> Iterator[Path]:
    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root")
    media = Path(settings.MEDIA_ROOT)
    media.mkdir(parents=True, exist_ok=True)
    try:
        mount("-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(media))
    except (OSError, subprocess.CalledProcessError) as error:
        unavailable(f"cannot mount a tmpfs here: {error}")
    try:
        yield media
    finally:
        subprocess.run(["umount", "-l", str(media)], capture_output=True, timeout=30)


@pytest.fixture
def project(team):
    for i in range(1, SCENES + 1):
        project_services.scene_create(project=team.project, prompt=f"Scene prompt {i}")
    return team.project


class RemountingReadOnly(SimulatedProvider):
    """Answers normally; after `after` answers the media directory is remounted read-only."""

    def __init__(self, media: Path, after: int) -> None:
        super().__init__(latency=0.01)
        self.media, self.after = media, after
        self.remounted = False
        self.answered = 0
        # Answers given before the media went read-only: the remount waits while an image is being
        # written, and meanwhile the other request in flight may be answered and its image kept.
        self.answered_before_read_only: int | None = None

    async def generate(self, request: ImageRequest) -> ImageResult:
        result = await super().generate(request)
        # At or past: with two requests in flight the count can step over `after` (2, 2, 4, 4, ...).
        if self.requests >= self.after and not self.remounted:
            self.remounted = True
            await remount_read_only(self.media)
            self.answered_before_read_only = self.answered
        self.answered += 1
        return result


async def remount_read_only(media: Path) -> None:
    # The kernel refuses (EBUSY) while a file there is open for writing: an image being saved.
    for _ in range(100):
        args = ["mount", "-o", "remount,ro", str(media)]
        done = await asyncio.to_thread(subprocess.run, args, capture_output=True, timeout=30)
        if done.returncode == 0:
            return
        await asyncio.sleep(0.02)  # until that save has closed its file
    raise AssertionError(f"could not remount {media} read-only: {done.stderr!r}")


async def run_it(start, project, provider):
    overrides = {"max_concurrency": 2, "start_concurrency": 2}
    run = await database_sync_to_async(start)(project=project, overrides=overrides)
    return await run_execute(run_id=run.pk, worker="w1", provider=provider)


async def test_a_media_directory_that_fills_up_stops_the_run_with_the_reason(project, start, small_media):
    provider = SimulatedProvider(latency=0.01)
    run = await run_it(start, project, provider)
    assert run.status == "failed" and "disk full" in run.reason
    assert 0 < run.succeeded < SCENES and run.failed >= 1
    # Stopped at the first image it could not keep: at most the requests then in flight went on.
    assert provider.requests <= run.succeeded + run.failed + 2
    failed = await database_sync_to_async(list)(project.scenes.filter(status="failed"))
    assert {s.last_error for s in failed} == {"could not store the image: disk full"}
    await database_sync_to_async(assert_nothing_lost)(project, small_media, resumable=True)
    assert len(image_files(small_media)) == run.succeeded


async def test_a_media_directory_remounted_read_only_stops_the_run_with_the_reason(
    project, start, small_media
):
    mount("-o", "remount,size=4m", str(small_media))  # room enough: only the remount stops it
    provider = RemountingReadOnly(small_media, after=5)
    run = await run_it(start, project, provider)
    assert run.status == "failed" and "read-only media" in run.reason
    assert 0 < run.succeeded <= provider.answered_before_read_only and run.failed >= 1
    # Stopped at the first image it could not keep: at most the requests then in flight went on.
    assert provider.requests <= provider.answered_before_read_only + 1 + 2
    await database_sync_to_async(assert_nothing_lost)(project, small_media, resumable=True)
