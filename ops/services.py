from __future__ import annotations

from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from ops.models import WorkerHeartbeat

# Rows of workers gone this long are deleted, so the table and the metrics hold the recent ones only.
FORGET_AFTER = timedelta(days=1)


def worker_heartbeat_write(*, worker: str, runs: int = 0) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(worker=worker, defaults={"seen": now, "runs": runs})
    WorkerHeartbeat.objects.filter(seen__lt=now - FORGET_AFTER).delete()


def workers_fresh(*, seconds: float | None = None, exclude: str = "") -> int:
    """Workers whose heartbeat is recent, but for `exclude` (a worker asking about the others)."""
    seconds = settings.WORKER_FRESH_SECONDS if seconds is None else seconds
    fresh = WorkerHeartbeat.objects.filter(seen__gte=timezone.now() - timedelta(seconds=seconds))
    return fresh.exclude(worker=exclude).count()


async def worker_heartbeat(*, worker: str, runs: int = 0) -> None:
    """The worker's scan loop says it is alive (one line there; the writing is here)."""
    await database_sync_to_async(worker_heartbeat_write)(worker=worker, runs=runs)
