"""/readyz behind a load balancer: unready once the only worker is killed."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.scale

# Workers beat on every scan (5 s); a little more than one scan, so a kill shows within seconds.
FRESH_SECONDS = "7"
WAIT_SECONDS = 30.0


def wait_for_ready(url: str, ready: bool) -> dict:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        response = httpx.get(url, timeout=5)
        if (response.status_code == 200) is ready:
            return response.json()
        time.sleep(0.25)  # polling another process's view of time passing
    pytest.fail(f"/readyz did not become {'ready' if ready else 'unready'} within {WAIT_SECONDS:g}s")


def test_readyz_turns_unhealthy_when_the_only_worker_is_killed(make_cluster):
    cluster = make_cluster(WORKER_FRESH_SECONDS=FRESH_SECONDS)
    (worker,), (daphne,) = cluster.start(workers=1, daphnes=1)
    url = f"http://127.0.0.1:{daphne.port}/readyz"
    ready = wait_for_ready(url, True)
    assert ready["checks"]["channel_layer"] == {"ok": True, "detail": "redis"}
    assert ready["checks"]["database"]["detail"] == "postgresql"
    metrics = httpx.get(f"http://127.0.0.1:{daphne.port}/metrics", timeout=5).text
    assert metrics.count("scenestudio_worker_heartbeat_timestamp_seconds{") == 1

    cluster.kill(worker)
    unready = wait_for_ready(url, False)
    assert unready["checks"]["workers"]["ok"] is False and unready["checks"]["database"]["ok"] is True
