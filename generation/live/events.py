"""The one place that names groups and sends live events. Events are droppable: the database is the truth.

Watchers receive {"type": "batch", "events": [...]} messages. Vocabulary of the events (each carries
`run`, a per-run `seq` and `ts`, the server's send time; a client seeing a gap asks for a snapshot):
run.started, scene.started, scene.succeeded, scene.failed, scene.skipped, run.progress,
run.quota_wait, run.pacing (waiting for the limiter, no error), run.stopping, run.finished.
Character runs send character.started/succeeded/failed instead of the scene events. scene.skipped carries
`reason` (the words, projects.models.SkipReason's label) and `reason_code` (its code, for pages to compare).

Every socket also joins its user's group, which carries access notices rather than events:
membership.changed (`project`: the user's role there changed or ended) and session.ended (`session`: the
session key that logged out). The socket closes on them; the page reconnects if it still may.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any

from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder

logger = logging.getLogger("generation.live")

WORKER_CHANNEL = "scene-generation"


def project_group(project_id: int) -> str:
    return f"project-{project_id}"


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


# Events of a project are coalesced into one group message per interval: with many watchers, a message
# per event costs every watcher a dispatch and a WebSocket frame, which slowed runs and delayed events by
# seconds (bench/live.py). The interval is the latency a watcher pays for that.
BATCH_SECONDS = 0.025
# Nothing may trail the end of a run, and the process may exit right after it (manage.py generate).
FLUSH_AT_ONCE = {"run.stopping", "run.finished"}


class _ProjectBatcher:
    def __init__(self, project_id: int) -> None:
        self.project_id = project_id
        self.pending: list[dict[str, Any]] = []
        self.lock = asyncio.Lock()  # batches leave in the order their events arrived
        self.timer: asyncio.Task | None = None

    async def add(self, event: dict[str, Any]) -> None:
        self.pending.append(event)
        if event.get("type") in FLUSH_AT_ONCE:
            await self.flush()
        elif self.timer is None or self.timer.done():
            self.timer = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(BATCH_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            events, self.pending = self.pending, []
            if events:
                await _group_send(self.project_id, events)


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, _ProjectBatcher]] = (
    weakref.WeakKeyDictionary()
)


async def send_event(project_id: int, event: dict[str, Any]) -> None:
    """Queue an event for the project's watchers; it leaves within BATCH_SECONDS."""
    per_loop = _batchers.setdefault(asyncio.get_running_loop(), {})
    batcher = per_loop.setdefault(project_id, _ProjectBatcher(project_id))
    await batcher.add(event)


async def _group_send(project_id: int, events: list[dict[str, Any]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # Encoded once here rather than once per watcher by each consumer.
    text = json.dumps({"type": "batch", "events": events}, cls=DjangoJSONEncoder)
    try:
        await layer.group_send(project_group(project_id), {"type": "generation.batch", "text": text})
    except Exception:  # a lost event is recoverable (clients resync); a crashed run is not
        logger.exception("Could not send %d events for project %s", len(events), project_id)


async def notify_user(user_id: int, notice: dict[str, Any]) -> None:
    """Send an access notice (type membership.changed or session.ended) to every socket of the user."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(user_group(user_id), notice)
    except Exception:  # every socket action re-checks access, so a lost notice only delays the close
        logger.warning("Could not send %s to user %s", notice.get("type"), user_id, exc_info=True)


async def wake_worker(run_id: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.send(WORKER_CHANNEL, {"type": "run.wake", "run_id": run_id})
    except Exception:  # a lost wake-up is recovered by the worker's periodic scan
        logger.warning("Could not wake a worker for run %s", run_id, exc_info=True)


async def stop_worker(run_id: int) -> None:
    """Fast path for a stop: the worker holding the run also polls the database flag, so this may be lost."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.send(WORKER_CHANNEL, {"type": "run.stop", "run_id": run_id})
    except Exception:
        logger.warning("Could not send the stop for run %s", run_id, exc_info=True)
