"""The counts a run's row stores and its run.progress events carry, from the scheduler's snapshot."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from generation.engine.jobs import Counters, Progress


def run_counts(
    snapshot: Progress, *, carried: Counters | None = None, at: datetime, stored: int | None = None
) -> dict[str, Any]:
    """The counts a run's row stores, the same ones its progress events carry. The wait seconds include
    the current wait's elapsed part up to `at` (`counts_at`); pages count on from there. `stored` is the
    recorder's own count of successes, which runs ahead of the scheduler's while images are stored."""
    carried = carried or Counters()
    eta = snapshot.eta_seconds
    return {
        "succeeded": carried.succeeded + (snapshot.succeeded if stored is None else stored),
        "failed": snapshot.failed,
        "requests": carried.requests + snapshot.requests,
        "retries": carried.retries + snapshot.retries,
        "quota_errors": carried.quota_errors + snapshot.quota_errors,
        "quota_wait_seconds": carried.quota_wait_seconds + snapshot.quota_wait_seconds,
        "pacing_seconds": carried.pacing_seconds + snapshot.pacing_seconds,
        "counts_at": at,
        "eta_at": None if eta is None else at + timedelta(seconds=eta),
    }


def same_counts(a: dict[str, Any], b: dict[str, Any]) -> bool:
    moments = {"counts_at", "eta_at", "quota_wait_seconds", "pacing_seconds"}
    return all(a[k] == b[k] for k in a if k not in moments)


def progress_payload(
    snapshot: Progress, *, skipped: int, counts: dict[str, Any], carried: Counters | None = None
) -> dict[str, Any]:
    """A run.progress event: the stored counts (times as ISO strings) and what only the live run knows."""
    carried = carried or Counters()
    eta = snapshot.eta_seconds
    return {
        "total": snapshot.total + skipped + carried.succeeded,
        **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in counts.items()},
        "quota_wait_seconds": round(counts["quota_wait_seconds"], 1),
        "pacing_seconds": round(counts["pacing_seconds"], 1),
        "skipped": skipped,
        "in_flight": snapshot.in_flight,
        "concurrency": snapshot.concurrency,
        "eta_seconds": None if eta is None else round(eta, 1),
    }
