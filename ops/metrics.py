"""Prometheus metrics, read from the database at scrape time: every worker and Daphne writes there, so
any one process reports the whole studio (no per-process counters to add up)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Q, Sum
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from generation.models import BatchRun, GenerationAttempt
from generation.selectors import runs_needing_a_worker
from ops.models import WorkerHeartbeat
from webhooks.models import Delivery, DeliveryAttempt

LATENCY_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)


def _attempts() -> Iterator:
    family = CounterMetricFamily(
        "scenestudio_generation_attempts",
        "Image requests by outcome (succeeded, an error kind, running, interrupted) and provider",
        labels=["outcome", "provider"],
    )
    rows = GenerationAttempt.objects.values("status", "error_kind", "provider").annotate(n=Count("pk"))
    totals: dict[tuple[str, str], int] = {}
    for row in rows:
        outcome = row["error_kind"] or "failed" if row["status"] == "failed" else row["status"]
        key = (outcome, row["provider"])
        totals[key] = totals.get(key, 0) + row["n"]
    for (outcome, provider), n in sorted(totals.items()):
        family.add_metric([outcome, provider], n)
    yield family


def _latency() -> Iterator:
    family = HistogramMetricFamily(
        "scenestudio_provider_request_seconds", "Latency of image requests per provider", labels=["provider"]
    )
    buckets = {
        f"le{i}": Count("pk", filter=Q(latency_ms__lte=b * 1000)) for i, b in enumerate(LATENCY_BUCKETS)
    }
    rows = (
        GenerationAttempt.objects.filter(latency_ms__isnull=False)
        .values("provider")
        .annotate(total=Count("pk"), sum_ms=Sum("latency_ms"), **buckets)
    )
    for row in rows:
        counts = [(str(b), row[f"le{i}"]) for i, b in enumerate(LATENCY_BUCKETS)] + [("+Inf", row["total"])]
        family.add_metric([row["provider"]], counts, sum_value=(row["sum_ms"] or 0) / 1000)
    yield family


def _runs() -> Iterator:
    by_status = GaugeMetricFamily("scenestudio_runs", "Runs by status", labels=["status"])
    counts = dict(BatchRun.objects.values_list("status").annotate(n=Count("pk")))
    for status in BatchRun.Status.values:
        by_status.add_metric([status], counts.get(status, 0))
    yield by_status
    totals = BatchRun.objects.aggregate(waits=Sum("quota_errors"), seconds=Sum("quota_wait_seconds"))
    yield CounterMetricFamily(
        "scenestudio_quota_waits", "Quota errors that paused a run", value=totals["waits"] or 0
    )
    yield CounterMetricFamily(
        "scenestudio_quota_wait_seconds", "Seconds runs spent waiting for quota", value=totals["seconds"] or 0
    )
    yield GaugeMetricFamily(
        "scenestudio_runs_waiting_for_worker",
        "Active runs no worker holds",
        value=len(runs_needing_a_worker()),
    )


def _workers() -> Iterator:
    family = GaugeMetricFamily(
        "scenestudio_worker_heartbeat_timestamp_seconds", "When each worker last scanned", labels=["worker"]
    )
    for worker, seen in WorkerHeartbeat.objects.values_list("worker", "seen"):
        family.add_metric([worker], seen.timestamp())
    yield family


def _webhooks() -> Iterator:
    family = GaugeMetricFamily(
        "scenestudio_webhook_deliveries", "Webhook deliveries by status and event", labels=["status", "event"]
    )
    for row in Delivery.objects.values("status", "event").annotate(n=Count("pk")).order_by("status", "event"):
        family.add_metric([row["status"], row["event"]], row["n"])
    yield family
    attempts = CounterMetricFamily(
        "scenestudio_webhook_delivery_attempts", "Webhook requests sent, by result", labels=["result"]
    )
    ok = Q(status_code__gte=200, status_code__lt=300)
    counts = DeliveryAttempt.objects.aggregate(ok=Count("pk", filter=ok), error=Count("pk", filter=~ok))
    attempts.add_metric(["ok"], counts["ok"])
    attempts.add_metric(["error"], counts["error"])
    yield attempts


class StudioCollector(Collector):
    def collect(self) -> Iterator:
        for part in (_runs, _attempts, _latency, _workers, _webhooks):
            yield from part()


def registry() -> CollectorRegistry:
    # A registry per scrape, not the global one: nothing is kept in this process between scrapes.
    fresh = CollectorRegistry(auto_describe=False)
    fresh.register(StudioCollector())
    return fresh
