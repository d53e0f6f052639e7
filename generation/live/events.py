"""The one place that names groups and sends live events, and the events' contract (docs/events.md).

Events are droppable: the database is the truth. Watchers receive {"type": "batch", "events": [...]}
messages; every run event carries `run`, a per-run `seq` and `ts` (the server's send time, epoch s), and a
client seeing a gap in `seq` asks for a snapshot. The TypedDicts below are the contract: the recorder
builds these, storyboard.js reads them, docs/events.md explains them. Character runs send
character.started/succeeded/failed/skipped with the scene events' fields.

Every socket also joins its user's group, which carries access notices rather than events:
membership.changed (`project`: the user's role there changed or ended) and session.ended (`session`: the
session key that logged out). The socket closes on them; the page reconnects if it still may.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any, Literal, NotRequired, TypedDict

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

logger = logging.getLogger("generation.live")


class Item(TypedDict):
    id: int
    position: int | None  # story position of a scene; None for a character
    label: str  # "Scene 3", or the character's name


class RunEvent(TypedDict):
    type: str
    run: int
    seq: int
    ts: float


class Counts(TypedDict):
    """The counts of docs/events.md's vocabulary, in run.progress and in every run payload alike."""

    total: int
    succeeded: int
    failed: int
    skipped: int
    requests: int  # requests sent, quota-refused ones included
    retries: int  # re-sends after a transient error
    quota_errors: int  # requests the provider refused for quota
    quota_waits: int  # pauses of all dispatch those refusals caused
    quota_wait_seconds: float  # seconds paused, the current pause's elapsed part up to counts_at
    pacing_seconds: float  # seconds the run held itself to the quota, no error
    counts_at: str | None  # ISO time the counts were taken; waits grow from there
    eta_at: str | None  # ISO time the run should end


class Wait(TypedDict):
    """A wait in progress, as run.quota_wait/run.pacing send it and a snapshot's run.wait repeats it."""

    kind: Literal["quota", "pacing"]
    until: str  # ISO time the wait ends: pages count down to it
    quota_waits: NotRequired[int]
    budget_seconds: NotRequired[float]  # quota: the run gives up past this much waiting in all
    requests_per_minute: NotRequired[int | None]  # pacing: the pace it holds


class RunPayload(Counts):
    """run.started and run.finished, and `run` in a snapshot (generation.runs.selectors.run_payload)."""

    id: int
    status: str
    active: bool
    kind: str
    removed: int
    reason: str
    summary: str
    requested_by: str
    created: str
    started: str | None
    finished: str | None
    quota_resume_at: str | None
    wait: Wait | None


class RunStarted(RunEvent, RunPayload):
    pass


class RunFinished(RunEvent, RunPayload):
    pass


class RunProgress(RunEvent, Counts):
    status: str
    in_flight: int
    concurrency: int
    eta_seconds: float | None


class RunQuotaWait(RunEvent):
    seconds: float
    until: str
    quota_waits: int
    budget_seconds: float
    reason: str


class RunPacing(RunEvent):
    requests_per_minute: int | None
    seconds: NotRequired[float]
    until: NotRequired[str]


class RunStopping(RunEvent):
    reason: str  # StopReason's value
    message: str


class StoredCounts(TypedDict):
    """The counts of Counts the run's row stores, as the item's own write left them."""

    succeeded: int
    failed: int
    requests: int
    retries: int
    quota_errors: int
    quota_wait_seconds: float
    pacing_seconds: float
    counts_at: str
    eta_at: str | None


class ItemStarted(RunEvent):
    item: Item
    counts: StoredCounts | None


class ItemSucceeded(RunEvent):
    item: Item
    attempts: int
    thumbnail: str
    counts: StoredCounts | None


class ItemFailed(RunEvent):
    item: Item
    reason: str
    kind: str  # ProviderError.kind
    attempts: int
    counts: StoredCounts | None


class ItemSkipped(RunEvent):
    item: Item
    reason: str  # the words (SkipReason's label)
    reason_code: str  # what pages compare (SkipReason's value)


class ScenesChanged(TypedDict):
    """The project's scenes changed outside a run (created, edited, deleted, moved, imported, linked, a
    reference changed): pages refresh their grid."""

    type: Literal["scenes.changed"]
    project: int


class Batch(TypedDict):
    type: Literal["batch"]
    events: list[dict[str, Any]]


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
# A scenes.changed comes from a request or a command that may not keep its event loop for the interval.
FLUSH_AT_ONCE = {"run.stopping", "run.finished", "scenes.changed"}


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


async def scenes_changed(project_id: int) -> None:
    event: ScenesChanged = {"type": "scenes.changed", "project": project_id}
    await send_event(project_id, dict(event))


def layer_spans_processes() -> bool:
    """Whether an event sent in another process (manage.py generate, a separate worker) reaches this
    one's sockets; the in-memory layer does not, so pages poll instead (storyboard.js)."""
    return not settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer")


async def _group_send(project_id: int, events: list[dict[str, Any]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # Encoded once here rather than once per watcher by each consumer.
    batch: Batch = {"type": "batch", "events": events}
    text = json.dumps(batch, cls=DjangoJSONEncoder)
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
