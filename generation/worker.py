"""The generation worker: a Channels consumer on the `scene-generation` channel plus a scan for orphan runs.

The same code runs embedded in the Daphne process (`make run`) and in `manage.py runworker scene-generation`
processes. A wake-up only says "look now": the run itself lives in the database, so a lost message or a
restarted worker never loses a run (the scan finds runs that are active and unowned, or whose owner's
heartbeat went stale).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.worker import Worker

from generation import services
from generation.limits import limiter_for
from generation.providers.factory import provider_for
from generation.runner import RunExecution

logger = logging.getLogger("generation.worker")

SCAN_SECONDS = 5.0


class Supervisor:
    """Holds this process's executions; at most one per run, any number of runs."""

    def __init__(self) -> None:
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self.executions: dict[int, RunExecution] = {}
        self.tasks: set[asyncio.Task] = set()

    def wake(self, run_id: int) -> None:
        if run_id in self.executions:
            return
        task = asyncio.create_task(self._execute(run_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def stop(self, run_id: int) -> None:
        execution = self.executions.get(run_id)
        if execution is not None:
            execution.stop()

    async def _execute(self, run_id: int) -> None:
        run = await database_sync_to_async(services.run_claim)(run_id=run_id, worker=self.worker_id)
        if run is None or run_id in self.executions:
            return
        try:
            provider = provider_for(run.provider, run.model)
            execution = RunExecution(
                run, provider=provider, worker=self.worker_id, limiter=limiter_for(provider, run.config)
            )
            self.executions[run_id] = execution
            await execution.execute()
        except Exception:
            logger.exception("Run %s crashed in worker %s", run_id, self.worker_id)
            await database_sync_to_async(services.run_fail)(
                run_id=run_id, reason="The worker hit an internal error"
            )
        finally:
            self.executions.pop(run_id, None)

    async def scan_forever(self) -> None:
        while True:
            try:
                for run_id in await database_sync_to_async(services.runs_needing_a_worker)():
                    self.wake(run_id)
            except Exception:
                logger.exception("Scanning for runs failed; trying again")
            await asyncio.sleep(SCAN_SECONDS)


supervisor = Supervisor()


class GenerationConsumer(AsyncConsumer):
    """Thin: turns channel messages into supervisor calls."""

    async def run_wake(self, message: dict) -> None:
        supervisor.wake(int(message["run_id"]))

    async def run_stop(self, message: dict) -> None:
        supervisor.stop(int(message["run_id"]))


class StudioWorker(Worker):
    """channels' Worker that also scans for runs nobody holds, so a lost wake-up costs seconds, not a run."""

    async def handle(self) -> None:
        scan = asyncio.ensure_future(supervisor.scan_forever())
        try:
            await super().handle()
        finally:
            scan.cancel()
