from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone

from generation.models import BatchRun
from generation.providers.base import ImageRequest, ImageResult
from generation.providers.simulated import SimulatedProvider
from generation.runs import providers as factory
from generation.runs import services
from projects import services as project_services
from tests.conftest import png_bytes

# Small waits so the error matrix runs in well under a second on the real clock.
FAST = {"backoff_base": 0.01, "quota_wait_default": 0.05, "grace_timeout": 2.0, "jitter": 0.0}


@pytest.fixture
def story(team):
    """Six scenes: two with Gopal (who has a reference), one already generated, one with an empty prompt."""
    project = team.project
    gopal = project_services.character_save(project=project, name="Gopal", description="a jester")
    gopal.reference.save("gopal.png", ContentFile(png_bytes(color="orange")), save=True)
    prompts = ["Gopal at dawn", "A river", "", "Gopal laughs", "The palace", "A goat"]
    scenes = [project_services.scene_create(project=project, prompt=p) for p in prompts]
    scenes[4].image.save("done.png", ContentFile(png_bytes()), save=False)
    scenes[4].status = "ready"
    scenes[4].save()
    return project, scenes, gopal


@pytest.fixture
def start(team):
    def start_run(project=None, **kwargs):
        overrides = {**FAST, **kwargs.pop("overrides", {})}
        run, created = services.run_start(
            project=project or team.project, user=team.editor, overrides=overrides, **kwargs
        )
        assert created
        return run

    return start_run


def simulated(**settings) -> SimulatedProvider:
    return SimulatedProvider(**{"latency": 0.01, **settings})


@pytest.fixture
def fast_simulated(settings):
    """The simulated provider and the engine's backoff made near-instant, for runs a command starts."""
    factory.provider_cache_clear()
    settings.GENERATION_PROVIDERS = {**settings.GENERATION_PROVIDERS, "simulated": {"latency": 0.001}}
    settings.GENERATION_ENGINE = {**settings.GENERATION_ENGINE, "backoff_base": 0.001, "jitter": 0.0}
    yield
    factory.provider_cache_clear()


def run_command(*args: str) -> str:
    """`manage.py generate ARGS`: what it printed to stdout."""
    out = io.StringIO()
    call_command("generate", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


async def wait_until(check: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll `check` (run in a thread, so it may query the database) until it holds; fail after `timeout`."""
    await poll_until(database_sync_to_async(check), timeout)


async def poll_until(check: Callable[[], Awaitable[object]], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)  # watching other tasks work; the condition decides
    raise AssertionError("timed out")


class Stalling(SimulatedProvider):
    """Answers the first `answers` requests, then hangs: a worker that dies mid-run."""

    def __init__(self, answers: int) -> None:
        super().__init__(latency=0.01)
        self.answers, self.sent = answers, 0

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.sent += 1
        self.answers -= 1
        if self.answers < 0:
            await asyncio.Event().wait()
        return await super().generate(request)


def take_over(run_id: int, worker: str) -> BatchRun | None:
    """The old owner's lease lapses (as far as `worker` can tell), and `worker` claims the run. One call
    in the ORM's thread: a test's "dead" worker is a cancelled task whose writes already under way still
    land (each renewing the lease), and none may come in between."""
    stale = timezone.now() - timedelta(seconds=services.LEASE_SECONDS + 1)
    BatchRun.objects.filter(pk=run_id).update(heartbeat=stale)
    return services.run_claim(run_id=run_id, worker=worker)
