"""The deliverer: a loop in every worker process that sends due webhook deliveries, signed, with
retries. It never touches a run: a slow or dead receiver costs only this loop's time."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError

from webhooks import services, signing
from webhooks.models import Delivery
from webhooks.urlcheck import webhook_url_check

logger = logging.getLogger("webhooks.deliver")
USER_AGENT = "SceneStudio-Webhooks/1"


async def _send(client: httpx.AsyncClient, delivery: Delivery) -> tuple[int | None, int | None, str]:
    endpoint = delivery.endpoint
    try:
        await asyncio.to_thread(webhook_url_check, endpoint.url)
    except ValidationError as exc:
        return None, None, " ".join(exc.messages)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-SceneStudio-Event": delivery.event,
        "X-SceneStudio-Event-Id": str(delivery.event_id),
        "X-SceneStudio-Delivery": str(delivery.pk),
        signing.HEADER: signing.header_value(endpoint.secret, delivery.body),
    }
    started = time.monotonic()
    try:
        response = await client.post(endpoint.url, content=delivery.body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        return None, round((time.monotonic() - started) * 1000), f"{type(exc).__name__}: {exc}"
    elapsed = round((time.monotonic() - started) * 1000)
    error = "" if response.is_success else f"HTTP {response.status_code}"
    return response.status_code, elapsed, error


async def _deliver(client: httpx.AsyncClient, delivery: Delivery) -> None:
    status, elapsed, error = await _send(client, delivery)
    recorded = await database_sync_to_async(services.delivery_record)(
        delivery_id=delivery.pk, status_code=status, response_ms=elapsed, error=error
    )
    logger.info(
        "Webhook %s (delivery %s) to %s: %s in %s ms, attempt %d, now %s",
        delivery.event,
        delivery.pk,
        delivery.endpoint.url,
        status or error,
        elapsed,
        recorded.attempts,
        recorded.status,
    )


async def deliver_due(client: httpx.AsyncClient) -> int:
    """Send every delivery due now, concurrently; how many were sent."""
    due = await database_sync_to_async(services.deliveries_claim)()
    await asyncio.gather(*(_deliver(client, d) for d in due))
    return len(due)


def _client() -> httpx.AsyncClient:
    # No redirects: a 3xx to another (perhaps private) host would bypass the URL check.
    return httpx.AsyncClient(timeout=settings.WEBHOOKS_TIMEOUT_SECONDS, follow_redirects=False)


async def webhooks_deliver_forever() -> None:
    """Runs until cancelled (the worker cancels it when it stops)."""
    async with _client() as client:
        while True:
            try:
                sent = await deliver_due(client)
            except Exception:
                logger.exception("Delivering webhooks failed; trying again")
                sent = 0
            if not sent:
                await asyncio.sleep(settings.WEBHOOKS_POLL_SECONDS)
