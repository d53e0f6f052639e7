"""The generation worker: a Channels consumer on the `scene-generation` channel plus a scan for orphan runs.

The same code runs embedded in the Daphne process (`make run`) and in `manage.py studioworker`
processes. A wake-up only says "look now": the run itself lives in the database, so a lost message or a
restarted worker never loses a run (the scan finds runs that are active and unowned, or whose owner's
heartbeat went stale). With several worker processes every one hears every wake-up (Redis pub/sub) and the
database decides which one holds the run; one killed mid-run is replaced once its lease lapses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop
from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.worker import Worker
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from generation.live.dispatch import DirectDispatch
from generation.runs import media, selectors, services
from generation.runs.execution import RunExecution, run_execute
from ops.services import worker_heartbeat, workers_fresh
from webhooks.deliver import webhooks_deliver_forever

logger = logging.getLogger("generation.worker")

SCAN_SECONDS = 5.0
# Every worker hears every wake-up; one busy with runs (or claiming one) waits this long per run before
# claiming, so an idle worker takes the new run and runs spread over the workers.
CLAIM_DELAY_PER_RUN = 0.2
# How long the answer to "is another worker alive?" (its heartbeat fresh) is kept: a burst of wake-ups asks
# once. With none alive a worker claims at once, since waiting would only delay every run after the first.
OTHERS_CHECK_SECONDS = 2.0
# On top of the runs' grace period, for the last images to be stored and the runs handed back.
SHUTDOWN_MARGIN_SECONDS = 10.0


class Supervisor:
    """Holds this process's executions; at most one per run, any number of runs."""

    def __init__(self) -> None:
        # Unique per process start, even where pids repeat (containers): a restarted worker must take its
        # old runs over like any other, not resume them as if it had never stopped.
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.executions: dict[int, RunExecution] = {}
        self.waiting: set[int] = set()  # woken, waiting for this worker's turn to claim
        self.claiming: set[int] = set()  # claims sent to the database
        self.load_changed = asyncio.Event()
        self.tasks: dict[int, asyncio.Task] = {}
        self.shutting_down = False
        self._others: tuple[float, bool] | None = None  # (when asked, whether another worker is alive)
        self._others_lock = asyncio.Lock()

    def wake(self, run_id: int) -> None:
        if self.shutting_down:
            return
        if run_id in self.executions or run_id in self.waiting or run_id in self.claiming:
            return
        task = asyncio.create_task(self._execute(run_id))
        self.tasks[run_id] = task
        task.add_done_callback(lambda done: self._forget(run_id, done))

    def _forget(self, run_id: int, task: asyncio.Task) -> None:
        if self.tasks.get(run_id) is task:
            del self.tasks[run_id]

    async def shut_down(self) -> None:
        """SIGTERM: claim nothing more, let each run's requests in flight finish within its grace period
        and store their images, then hand every run back to the queue for another worker to resume at
        once. Returns when all are handed back (or the grace period and a margin have passed)."""
        self.shutting_down = True
        for run_id in list(self.waiting):
            task = self.tasks.get(run_id)
            if task is not None:
                task.cancel()
        for execution in list(self.executions.values()):
            execution.hand_back()
        tasks = list(self.tasks.values())
        if not tasks:
            return
        grace = max((e.config.grace_timeout for e in self.executions.values()), default=0.0)
        logger.warning("Worker %s shutting down: handing %d run(s) back", self.worker_id, len(tasks))
        _, late = await asyncio.wait(tasks, timeout=grace + SHUTDOWN_MARGIN_SECONDS)
        if late:
            logger.error("Worker %s: %d run(s) not handed back in time", self.worker_id, len(late))

    def stop(self, run_id: int) -> None:
        execution = self.executions.get(run_id)
        if execution is not None:
            execution.stop()

    async def _my_turn(self) -> None:
        """Wait CLAIM_DELAY_PER_RUN per run this worker executes or is claiming, re-read as that changes:
        after a burst of wake-ups (a restart, a scan finding orphans) the worker that lost the race for
        the first run is idle again, and takes the next one first."""
        loop = asyncio.get_running_loop()
        woken = loop.time()
        if self._claim_delay() > 0 and not await self._others_alive():
            return  # nobody else would take the run: waiting would only delay it
        while (wait := self._claim_delay() - (loop.time() - woken)) > 0:
            self.load_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self.load_changed.wait()

    async def _others_alive(self) -> bool:
        loop = asyncio.get_running_loop()
        async with self._others_lock:
            if self._others is None or loop.time() - self._others[0] > OTHERS_CHECK_SECONDS:
                try:
                    others = await database_sync_to_async(workers_fresh)(exclude=self.worker_id)
                except Exception:
                    logger.exception("Could not tell whether other workers are alive; assuming so")
                    others = 1
                self._others = (loop.time(), others > 0)
            return self._others[1]

    def _claim_delay(self) -> float:
        return CLAIM_DELAY_PER_RUN * (len(self.executions) + len(self.claiming))

    async def _execute(self, run_id: int) -> None:
        self.waiting.add(run_id)
        try:
            await self._my_turn()
        finally:
            self.waiting.discard(run_id)
        self.claiming.add(run_id)
        try:
            await run_execute(
                run_id=run_id, worker=self.worker_id, on_start=lambda e: self._started(run_id, e)
            )
        except Exception:
            logger.exception("Run %s crashed in worker %s", run_id, self.worker_id)
            await database_sync_to_async(services.run_fail)(
                run_id=run_id, reason="The worker hit an internal error", worker=self.worker_id
            )
        finally:
            self.claiming.discard(run_id)
            self.executions.pop(run_id, None)
            self.load_changed.set()

    def _started(self, run_id: int, execution: RunExecution) -> None:
        """The claim succeeded: the run counts as this worker's execution, no longer as a claim."""
        self.claiming.discard(run_id)
        self.executions[run_id] = execution
        self.load_changed.set()
        if self.shutting_down:  # claimed while the shutdown began: straight back to the queue
            execution.hand_back()

    async def scan_forever(self) -> None:
        while not self.shutting_down:
            try:
                for run_id in await database_sync_to_async(selectors.runs_needing_a_worker)():
                    self.wake(run_id)
                await worker_heartbeat(worker=self.worker_id, runs=len(self.executions))
            except Exception:
                logger.exception("Scanning for runs failed; trying again")
            await asyncio.sleep(SCAN_SECONDS)


supervisor = Supervisor()


class GenerationConsumer(DirectDispatch, AsyncConsumer):
    """Thin: turns channel messages into supervisor calls (none touches the database)."""

    direct = frozenset({"run.wake", "run.stop"})

    async def run_wake(self, message: dict) -> None:
        supervisor.wake(int(message["run_id"]))

    async def run_stop(self, message: dict) -> None:
        supervisor.stop(int(message["run_id"]))


async def delete_orphan_media() -> None:
    """Images a crashed worker stored but never recorded (see `manage.py cleanup_media`)."""
    try:
        # Not the ORM's shared thread: walking a large media folder must not hold up the runs.
        await database_sync_to_async(media.orphan_media_delete, thread_sensitive=False)()
    except Exception:
        logger.exception("Cleaning up orphan media failed")


# What settings.WORKER_EVENT_LOOP may name, and what runs the worker on it (ops.checks reads the names).
EVENT_LOOPS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {
    "uvloop": uvloop.run,
    "asyncio": asyncio.run,
}


def event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    try:
        return EVENT_LOOPS[settings.WORKER_EVENT_LOOP]
    except KeyError:
        raise ImproperlyConfigured(
            f"WORKER_EVENT_LOOP is {settings.WORKER_EVENT_LOOP!r}: {' or '.join(EVENT_LOOPS)}"
        ) from None


class StudioWorker(Worker):
    """channels' Worker that also scans for runs nobody holds, so a lost wake-up costs seconds, not a run,
    and cleans up after crashed workers when it starts.

    SIGTERM shuts it down gracefully (Supervisor.shut_down) and then it exits; `handle_sigterm=False`
    where the host process owns the signal (runstudio: Twisted's reactor, which calls shut_down itself).
    """

    def __init__(self, *args, handle_sigterm: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.handle_sigterm = handle_sigterm

    def run(self) -> None:
        """As channels' Worker.run, on the loop settings.WORKER_EVENT_LOOP names."""
        try:
            event_loop_runner()(self.arun())
        except KeyboardInterrupt:
            logger.info("Exiting due to Ctrl-C/interrupt")

    async def handle(self) -> None:
        cleanup = asyncio.ensure_future(delete_orphan_media())
        scan = asyncio.ensure_future(supervisor.scan_forever())
        deliveries = asyncio.ensure_future(webhooks_deliver_forever())
        listening = asyncio.ensure_future(super().handle())
        terminated = asyncio.Event()
        if self.handle_sigterm:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated.set)
        told = asyncio.ensure_future(terminated.wait())
        try:
            await asyncio.wait({listening, told}, return_when=asyncio.FIRST_COMPLETED)
            if told.done():
                scan.cancel()
                await supervisor.shut_down()
            else:
                listening.result()  # the listener's own error, if it ended with one
        finally:
            if self.handle_sigterm:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
            for task in (listening, told, scan, cleanup, deliveries):
                task.cancel()
