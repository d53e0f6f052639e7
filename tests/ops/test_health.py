"""/healthz, /readyz and the worker heartbeat they read."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from generation.runs.worker import Supervisor
from ops.models import WorkerHeartbeat
from ops.services import worker_heartbeat_write
from tests.generation.conftest import wait_until

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_without_touching_anything(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_ready_on_the_embedded_defaults(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert {name: check["ok"] for name, check in response.json()["checks"].items()} == {
        "database": True,
        "channel_layer": True,
        "workers": True,
    }


def test_readyz_is_unavailable_when_redis_does_not_answer(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["status"] == "unavailable"
    assert response.json()["checks"]["channel_layer"]["ok"] is False


@pytest.mark.parametrize(("age", "ready"), [(None, False), (2, True), (120, False)])
def test_when_scaled_readiness_needs_a_worker_seen_recently(settings, age, ready):
    from ops import health

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.WORKER_FRESH_SECONDS = 30
    if age is not None:
        worker_heartbeat_write(worker="w1")
        WorkerHeartbeat.objects.update(seen=timezone.now() - timedelta(seconds=age))
    assert health.workers()[0] is ready


@pytest.mark.django_db(transaction=True)
async def test_the_worker_scan_writes_its_heartbeat():
    supervisor = Supervisor()
    scan = asyncio.create_task(supervisor.scan_forever())
    try:
        await wait_until(WorkerHeartbeat.objects.filter(worker=supervisor.worker_id).exists, timeout=4.0)
    finally:
        scan.cancel()
    beat = await database_sync_to_async(WorkerHeartbeat.objects.get)(worker=supervisor.worker_id)
    assert timezone.now() - beat.seen < timedelta(seconds=5)
