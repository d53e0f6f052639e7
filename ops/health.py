"""Readiness checks: each returns (ok, detail) and never raises."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from ops.services import workers_fresh

REDIS_TIMEOUT_SECONDS = 1.0


def database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return True, connection.vendor


def redis_ping(url: str) -> tuple[bool, str]:
    import redis

    client = redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return True, "redis"


def channel_layer() -> tuple[bool, str]:
    from channels.layers import get_channel_layer

    if get_channel_layer() is None:
        return False, "no channel layer configured"
    if settings.REDIS_URL:
        return redis_ping(settings.REDIS_URL)
    return True, "in-memory"


def workers() -> tuple[bool, str]:
    """With Redis, workers are separate processes and one must be alive; without, the worker runs
    inside this very process (runstudio), so it is as alive as the process answering."""
    if not settings.REDIS_URL:
        return True, "embedded"
    try:
        fresh = workers_fresh()
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    window = f"{settings.WORKER_FRESH_SECONDS:g}s"
    return fresh > 0, f"{fresh} worker(s) seen in the last {window}"


CHECKS = {"database": database, "channel_layer": channel_layer, "workers": workers}


def readiness() -> tuple[bool, dict[str, dict]]:
    results = {name: check() for name, check in CHECKS.items()}
    return all(ok for ok, _ in results.values()), {
        name: {"ok": ok, "detail": detail} for name, (ok, detail) in results.items()
    }
