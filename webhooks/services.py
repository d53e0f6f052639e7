"""Webhook workflows: endpoints, the durable outbox of events, and recording each delivery attempt.

Events are rows written in the same transaction as the state change they announce (the outbox pattern):
a crash loses neither, and a run never waits for a receiver. The worker sends them (webhooks.deliver)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webhooks.models import EVENTS, Delivery, DeliveryAttempt, Endpoint
from webhooks.urlcheck import webhook_url_check

# Stop reasons (generation.engine.jobs.StopReason values) that park a run: quota ran out, resumable later.
PARKING_REASONS = {"daily_quota", "quota_wait_exceeded"}
LOCK_MARGIN_SECONDS = 30.0


def endpoint_create(*, project, url: str, events: Sequence[str] = (), user=None) -> Endpoint:
    webhook_url_check(url)
    unknown = set(events) - set(EVENTS)
    if unknown:
        raise ValidationError(f"Unknown events: {sorted(unknown)}.", code="events")
    return Endpoint.objects.create(project=project, url=url, events=list(events), created_by=user)


# Inside endpoints_read_once(): each project's endpoints for an event, as read (and locked) already.
_read: ContextVar[dict[tuple[int, str], list[Endpoint]] | None] = ContextVar("endpoints_read", default=None)


@contextmanager
def endpoints_read_once() -> Iterator[None]:
    """For one transaction recording many items (a group commit): read each project's endpoints for an
    event once. The lock the first read takes holds them until that transaction ends."""
    token = _read.set({})
    try:
        yield
    finally:
        _read.reset(token)


def _wanting(project_id: int, event: str) -> list[Endpoint]:
    read = _read.get()
    if read is not None and (project_id, event) in read:
        return read[project_id, event]
    endpoints = Endpoint.objects.filter(project_id=project_id, active=True).only("pk", "events")
    if transaction.get_connection().in_atomic_block:
        # Locked (against deletion only) until the caller commits: an endpoint deleted in between would
        # fail that commit on the deliveries' deferred foreign key, losing the change the event announces.
        endpoints = endpoints.select_for_update(no_key=True)
    wanting = [e for e in endpoints if e.wants(event)]
    if read is not None:
        read[project_id, event] = wanting
    return wanting


def _enqueue(endpoints: list[Endpoint], *, project_id: int, event: str, payload: dict) -> None:
    event_id = uuid.uuid4()
    now = timezone.now()
    body = json.dumps(
        {
            "id": str(event_id),
            "event": event,
            "created": now.isoformat(),
            "project": project_id,
            "data": payload,
        },
        separators=(",", ":"),
    )
    Delivery.objects.bulk_create(
        Delivery(endpoint=e, event=event, event_id=event_id, body=body, next_attempt=now) for e in endpoints
    )


def webhook_event_enqueue(*, project_id: int, event: str, payload: dict) -> None:
    """Queue `event` for every active endpoint of the project that wants it; call it inside the
    transaction that writes the change, so the event exists exactly when the change does."""
    endpoints = _wanting(project_id, event)
    if endpoints:
        _enqueue(endpoints, project_id=project_id, event=event, payload=payload)


def _run_data(run) -> dict[str, Any]:
    from django.urls import reverse

    from generation.models import BatchRun
    from generation.selectors import run_payload

    # A fresh copy, not the caller's object: the counts as committed, and nothing of the caller's changed.
    fresh = BatchRun.objects.select_related("requested_by").get(pk=run.pk)
    return {**run_payload(fresh), "url": reverse("api:run_get", args=[run.project_id, run.pk])}


def webhook_run_event(*, run, event: str, scene_id: int | None = None) -> None:
    """Queue a run's event: `run.*` with the run's counts, `scene.*` with the scene (scene runs only).

    Called for every scene a run generates: with no endpoint wanting the event it costs one query."""
    if scene_id is not None and run.kind != "scenes":
        return
    endpoints = _wanting(run.project_id, event)
    if not endpoints:
        return
    data: dict[str, Any] = {"run": _run_data(run) if event.startswith("run.") else {"id": run.pk}}
    if scene_id is not None:
        from projects.models import Scene

        scene = Scene.objects.filter(pk=scene_id).values("id", "position", "title", "status", "last_error")
        data["scene"] = scene.first()
    _enqueue(endpoints, project_id=run.project_id, event=event, payload=data)


def webhook_run_finished(*, run, stop_reason: str) -> None:
    """A run ended: `run.parked` when the quota stopped it (start it again later), else `run.finished`."""
    event = "run.parked" if str(stop_reason) in PARKING_REASONS else "run.finished"
    webhook_run_event(run=run, event=event)


def deliveries_claim(*, limit: int = 20, now=None) -> list[Delivery]:
    """Take due deliveries for this deliverer with one conditional update each; a row another deliverer
    took first is simply not updated here."""
    now = now or timezone.now()
    free = Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    due = Q(status=Delivery.Status.PENDING, next_attempt__lte=now) & free
    ids = list(Delivery.objects.filter(due).order_by("next_attempt").values_list("pk", flat=True)[:limit])
    lock = now + timedelta(seconds=settings.WEBHOOKS_TIMEOUT_SECONDS + LOCK_MARGIN_SECONDS)
    claimed = [pk for pk in ids if Delivery.objects.filter(due, pk=pk).update(locked_until=lock)]
    return list(Delivery.objects.filter(pk__in=claimed).select_related("endpoint"))


def delivery_record(
    *, delivery_id: int, status_code: int | None, response_ms: int | None, error: str = ""
) -> Delivery:
    """Log one attempt; on a 2xx the delivery is done, else it is retried with exponential backoff until
    WEBHOOKS_MAX_ATTEMPTS, then failed."""
    now = timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
        delivery.attempts += 1
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            status_code=status_code,
            response_ms=response_ms,
            error=error[:2000],
        )
        delivery.last_status_code, delivery.last_response_ms, delivery.last_error = (
            status_code,
            response_ms,
            error[:2000],
        )
        delivery.locked_until = None
        if status_code is not None and 200 <= status_code < 300:
            delivery.status, delivery.delivered = Delivery.Status.DELIVERED, now
        elif delivery.attempts >= settings.WEBHOOKS_MAX_ATTEMPTS:
            delivery.status = Delivery.Status.FAILED
        else:
            backoff = settings.WEBHOOKS_BACKOFF_SECONDS * 2 ** (delivery.attempts - 1)
            delivery.next_attempt = now + timedelta(seconds=backoff)
        delivery.save()
    return delivery


def delivery_redeliver(*, delivery: Delivery) -> Delivery:
    """Send the same event (same id and body, freshly signed) again, as a new delivery with its own log."""
    return Delivery.objects.create(
        endpoint=delivery.endpoint,
        event=delivery.event,
        event_id=delivery.event_id,
        body=delivery.body,
        next_attempt=timezone.now(),
        redelivery_of=delivery,
    )
