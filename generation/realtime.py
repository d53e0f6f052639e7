"""The one place that names groups and sends live events. Events are droppable: the database is the truth.

Vocabulary (each event carries `run` and a per-run `seq`; a client seeing a gap asks for a snapshot):
run.started, scene.started, scene.succeeded, scene.failed, scene.skipped, run.progress,
run.quota_wait, run.stopping, run.finished.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger("generation.realtime")

WORKER_CHANNEL = "scene-generation"


def project_group(project_id: int) -> str:
    return f"project-{project_id}"


async def send_event(project_id: int, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(project_group(project_id), {"type": "generation.event", "event": event})
    except Exception:  # a lost event is recoverable (clients resync); a crashed run is not
        logger.exception("Could not send %s for project %s", event.get("type"), project_id)


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
