from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import ChannelNameRouter
from django.core.exceptions import ImproperlyConfigured
from django.core.management import get_commands, load_command_class

from generation.live.events import WORKER_CHANNEL
from generation.models import BatchRun
from generation.runs import execution
from generation.runs import providers as factory
from generation.runs import worker as worker_module
from generation.runs.worker import GenerationConsumer, StudioWorker, Supervisor
from ops.services import worker_heartbeat_write

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def supervisor(settings, monkeypatch):
    factory.provider_cache_clear()
    settings.GENERATION_PROVIDER = "simulated"
    settings.GENERATION_PROVIDERS = {**settings.GENERATION_PROVIDERS, "simulated": {"latency": 0.01}}
    fresh = Supervisor()
    monkeypatch.setattr(worker_module, "supervisor", fresh)
    monkeypatch.setattr(worker_module, "SCAN_SECONDS", 0.1)
    yield fresh
    factory.provider_cache_clear()


async def wait_for_status(run_id: int, status: str, timeout: float = 10) -> BatchRun:
    for _ in range(int(timeout / 0.05)):
        run = await database_sync_to_async(BatchRun.objects.get)(pk=run_id)
        if run.status == status:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} is {run.status}, not {status}")


async def test_a_wake_up_on_the_channel_makes_the_worker_execute_the_run(story, start, supervisor):
    layer = get_channel_layer()
    worker = StudioWorker(
        ChannelNameRouter({WORKER_CHANNEL: GenerationConsumer.as_asgi()}), [WORKER_CHANNEL], layer
    )
    task = asyncio.create_task(worker.arun())
    try:
        run = await database_sync_to_async(start)()  # its on_commit sends the wake-up
        run = await wait_for_status(run.pk, "completed")
        assert run.owner == supervisor.worker_id and run.succeeded == 4
    finally:
        task.cancel()


@pytest.mark.parametrize("kind", ["wake", "stop"])
async def test_a_wake_up_or_stop_is_handled_while_the_orm_thread_is_busy(supervisor, monkeypatch, kind):
    """channels' consumers hop to the ORM's thread before every handler (to close stale connections):
    a wake-up then waited behind every run's writes, and ten projects starting at once on one worker
    were woken one by one, the last 0.9 s after its run was created. Nothing here touches the database."""
    woken: list[int] = []
    handled = asyncio.Event()
    monkeypatch.setattr(supervisor, kind, lambda run_id: woken.append(run_id) or handled.set())
    release = threading.Event()
    busy = asyncio.create_task(database_sync_to_async(release.wait)(10))
    consumer = ApplicationCommunicator(
        GenerationConsumer.as_asgi(), {"type": "channel", "channel": WORKER_CHANNEL}
    )
    try:
        await consumer.send_input({"type": f"run.{kind}", "run_id": 7})
        async with asyncio.timeout(2):
            await handled.wait()
        assert woken == [7] and not busy.done()
    finally:
        release.set()
        await busy
        consumer.stop()


async def test_a_run_whose_wake_up_was_lost_is_found_by_the_scan(story, start, supervisor):
    run = await database_sync_to_async(start)()
    await get_channel_layer().flush()  # the wake-up is lost
    scan = asyncio.create_task(supervisor.scan_forever())
    try:
        assert (await wait_for_status(run.pk, "completed")).succeeded == 4
    finally:
        scan.cancel()


async def test_a_crash_inside_the_worker_fails_the_run_and_releases_its_scenes(
    story, start, supervisor, monkeypatch
):

    def broken(*args, **kwargs):
        raise RuntimeError("provider factory exploded")

    monkeypatch.setattr(execution, "project_provider", broken)
    run = await database_sync_to_async(start)()
    supervisor.wake(run.pk)
    run = await wait_for_status(run.pk, "failed")
    assert run.reason == "The worker hit an internal error"
    project, *_ = story
    assert not await database_sync_to_async(project.scenes.filter(claimed_by__isnull=False).exists)()


def test_studioworker_runs_the_studio_worker_on_the_generation_channel_by_default():
    command = load_command_class(get_commands()["studioworker"], "studioworker")
    options = command.create_parser("manage.py", "studioworker").parse_args([])
    assert command.worker_class is StudioWorker and options.channels == [WORKER_CHANNEL]
    # The old name keeps working for existing deploys (generation comes before channels in INSTALLED_APPS).
    runworker = load_command_class(get_commands()["runworker"], "runworker")
    assert runworker.worker_class is StudioWorker


class _Held:
    """Stands in for a run's execution while the fake run_execute holds the run."""

    def hand_back(self) -> None:
        pass


@pytest.fixture
def claims(monkeypatch):
    """run_execute replaced by one that only claims: the ids in the order the worker claimed them."""
    claimed: list[int] = []

    async def claim(*, run_id, worker, on_start):
        on_start(_Held())
        claimed.append(run_id)
        await asyncio.sleep(30)

    monkeypatch.setattr(worker_module, "run_execute", claim)
    monkeypatch.setattr(worker_module, "CLAIM_DELAY_PER_RUN", 30.0)
    return claimed


async def _woken(supervisor, runs, seconds: float = 0.5) -> None:
    for run_id in runs:
        supervisor.wake(run_id)
    await asyncio.sleep(seconds)


async def test_a_worker_alone_claims_every_woken_run_at_once(supervisor, claims):
    """Waiting only lets another worker take the run first: with none alive it is pure delay (ten
    projects starting at once waited up to 1.8 s for one worker to take the last run)."""
    try:
        await _woken(supervisor, [1, 2, 3])
        assert sorted(claims) == [1, 2, 3]
    finally:
        await supervisor_cancel(supervisor)


async def test_a_busy_worker_leaves_a_woken_run_to_another_live_worker(supervisor, claims):
    await database_sync_to_async(worker_heartbeat_write)(worker="other-host-1", runs=0)
    try:
        await _woken(supervisor, [1, 2])
        assert claims == [1] or claims == [2]
    finally:
        await supervisor_cancel(supervisor)


async def supervisor_cancel(supervisor) -> None:
    for task in list(supervisor.tasks.values()):
        task.cancel()
    await asyncio.gather(*supervisor.tasks.values(), return_exceptions=True)


LOOPS = [("uvloop", "uvloop.Loop"), ("asyncio", "asyncio.unix_events._UnixSelectorEventLoop")]


def a_worker() -> StudioWorker:
    return StudioWorker(application=None, channels=[WORKER_CHANNEL], channel_layer=get_channel_layer())


@pytest.mark.parametrize(("setting", "loop"), LOOPS)
def test_the_worker_runs_on_the_event_loop_its_setting_names(settings, monkeypatch, setting, loop):
    settings.WORKER_EVENT_LOOP = setting
    ran_on = []

    async def arun(self) -> None:
        ran_on.append(type(asyncio.get_running_loop()))

    monkeypatch.setattr(StudioWorker, "arun", arun)
    a_worker().run()
    assert [f"{kind.__module__}.{kind.__qualname__}" for kind in ran_on] == [loop]


def test_a_worker_event_loop_it_does_not_know_is_a_configuration_error(settings):
    settings.WORKER_EVENT_LOOP = "trio"
    with pytest.raises(ImproperlyConfigured, match="WORKER_EVENT_LOOP is 'trio'"):
        a_worker().run()


def _health_checks_over_three_orm_calls(monkeypatch) -> int:
    """A new connection, used as a worker's ORM calls use it (channels closes old connections around each
    one): how many times it was health-checked."""
    from django.db import connections

    connection = connections.create_connection("default")
    checks = []
    usable = type(connection).is_usable
    monkeypatch.setattr(type(connection), "is_usable", lambda self: checks.append(1) or usable(self))
    try:
        for _ in range(3):
            connection.close_if_unusable_or_obsolete()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
    finally:
        connection.close()
    return len(checks)


def test_a_process_that_only_generates_does_not_health_check_before_every_orm_call(monkeypatch, settings):
    """With CONN_HEALTH_CHECKS every ORM call of a worker paid a SELECT 1 first; `studioworker` skips
    them (its writes retry a dropped connection). Embedded in Daphne (runstudio) the worker shares the
    process with pages, which keep theirs."""
    from channels.management.commands.runworker import Command as ChannelsRunworker
    from django.core.management import call_command
    from django.db.backends.signals import connection_created

    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"]
    assert _health_checks_over_three_orm_calls(monkeypatch) >= 2
    monkeypatch.setattr(ChannelsRunworker, "handle", lambda self, *args, **options: None)
    try:
        call_command("studioworker")
        assert _health_checks_over_three_orm_calls(monkeypatch) == 0
    finally:
        connection_created.disconnect(dispatch_uid="studioworker-health-checks")
    assert _health_checks_over_three_orm_calls(monkeypatch) >= 2
