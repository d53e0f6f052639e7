"""Webhook rules without a network: URLs allowed, the outbox, signatures, retry budget, the owners' page."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import Client
from django.utils import timezone

from generation.models import BatchRun
from webhooks import signing
from webhooks.models import Delivery
from webhooks.services import delivery_record, endpoint_create, webhook_event_enqueue, webhook_run_finished
from webhooks.urlcheck import webhook_url_check

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/",
        "http://192.168.0.7/",
        "http://169.254.169.254/latest",
        "http://[::1]/",
        "file:///etc/passwd",
    ],
)
def test_loopback_private_and_non_http_urls_are_refused(url, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError):
        webhook_url_check(url)


def test_the_allowance_lets_loopback_through_but_never_other_schemes(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    webhook_url_check("http://127.0.0.1:9/hook")
    with pytest.raises(ValidationError):
        webhook_url_check("ftp://127.0.0.1/")


def test_a_public_address_is_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    webhook_url_check("https://93.184.215.14/hook")  # a literal: no DNS lookup, no network


def test_an_event_is_queued_only_if_its_transaction_commits(team, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    endpoint_create(project=team.project, url="http://127.0.0.1:9/hook")
    with pytest.raises(RuntimeError), transaction.atomic():
        webhook_event_enqueue(project_id=team.project.pk, event="run.started", payload={"run": 1})
        raise RuntimeError("the state change failed")
    assert not Delivery.objects.exists()
    webhook_event_enqueue(project_id=team.project.pk, event="run.started", payload={"run": 1})
    body = json.loads(Delivery.objects.get().body)
    assert body["event"] == "run.started" and body["data"] == {"run": 1}


def test_a_quota_stop_parks_and_anything_else_finishes(team, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    endpoint_create(project=team.project, url="http://127.0.0.1:9/hook")
    run = BatchRun.objects.create(project=team.project, provider="sketch", status="failed")
    for reason in ("daily_quota", "quota_wait_exceeded", "completed", "stopped", "auth"):
        webhook_run_finished(run=run, stop_reason=reason)
    events = list(Delivery.objects.order_by("pk").values_list("event", flat=True))
    assert events == ["run.parked", "run.parked", "run.finished", "run.finished", "run.finished"]


def test_signatures_refuse_old_timestamps_and_changed_bodies():
    header = signing.header_value("s3cret", '{"a":1}', timestamp=1_000_000)
    assert signing.verify("s3cret", header, '{"a":1}', now=1_000_100)
    assert not signing.verify("s3cret", header, '{"a":1}', now=1_000_000 + 301)
    assert not signing.verify("s3cret", header, '{"a":2}', now=1_000_100)
    assert not signing.verify("s3cret", "garbage", '{"a":1}')


def test_retries_back_off_exponentially_then_give_up(team, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOKS_MAX_ATTEMPTS = 3
    settings.WEBHOOKS_BACKOFF_SECONDS = 10
    endpoint_create(project=team.project, url="http://127.0.0.1:9/hook")
    webhook_event_enqueue(project_id=team.project.pk, event="run.started", payload={})
    delivery = Delivery.objects.get()
    waits = []
    for _ in range(3):
        before = timezone.now()
        delivery = delivery_record(delivery_id=delivery.pk, status_code=503, response_ms=5, error="HTTP 503")
        waits.append(round((delivery.next_attempt - before).total_seconds()))
    assert delivery.status == "failed" and delivery.attempts == 3
    assert waits[:2] == [10, 20]
    assert [a.status_code for a in delivery.log.all()] == [503, 503, 503]


@pytest.fixture
def delivered(team, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    endpoint = endpoint_create(project=team.project, url="http://127.0.0.1:9/hook")
    webhook_event_enqueue(project_id=team.project.pk, event="run.finished", payload={})
    delivery = Delivery.objects.get()
    delivery_record(delivery_id=delivery.pk, status_code=200, response_ms=12)
    return endpoint, delivery


@pytest.mark.parametrize(
    ("role", "status"), [("owner", 200), ("editor", 403), ("viewer", 403), ("outsider", 404)]
)
def test_only_owners_see_the_deliveries_page(team, delivered, role, status):
    endpoint, _ = delivered
    client = Client()
    client.force_login(team.user(role))
    assert client.get(f"/projects/{team.project.pk}/webhooks/{endpoint.pk}/").status_code == status
    assert client.get(f"/projects/{team.project.pk}/webhooks/").status_code == status


def test_the_deliveries_page_shows_the_log_and_redelivers_the_same_event(team, delivered):
    endpoint, delivery = delivered
    client = Client()
    client.force_login(team.owner)
    page = client.get(f"/projects/{team.project.pk}/webhooks/{endpoint.pk}/").content.decode()
    assert "run.finished" in page and "12 ms" in page and "delivered" in page
    client.post(f"/projects/{team.project.pk}/webhooks/deliveries/{delivery.pk}/redeliver/")
    again = Delivery.objects.exclude(pk=delivery.pk).get()
    assert again.status == "pending" and again.event_id == delivery.event_id and again.body == delivery.body


def test_an_editor_cannot_redeliver(team, delivered):
    _, delivery = delivered
    client = Client()
    client.force_login(team.editor)
    response = client.post(f"/projects/{team.project.pk}/webhooks/deliveries/{delivery.pk}/redeliver/")
    assert response.status_code == 403 and Delivery.objects.count() == 1


def test_the_page_refuses_a_private_url(team, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    client = Client()
    client.force_login(team.owner)
    response = client.post(f"/projects/{team.project.pk}/webhooks/", {"url": "http://127.0.0.1/hook"})
    assert response.status_code == 200 and "private" in response.content.decode()
    assert not team.project.webhook_endpoints.exists()


def test_the_admin_redelivers(team, delivered, admin_client):
    _, delivery = delivered
    admin_client.post("/admin/webhooks/delivery/", {"action": "redeliver", "_selected_action": [delivery.pk]})
    assert Delivery.objects.count() == 2


def _hooked_run(team):
    from generation.runs import services as generation_services
    from projects import services as project_services

    endpoint_create(project=team.project, url="http://127.0.0.1:9/hook", events=["run.finished"])
    project_services.scene_create(project=team.project, prompt="A river")
    run, _ = generation_services.run_start(project=team.project, user=team.editor)
    return run


def test_stopping_a_queued_run_announces_that_it_finished(team, settings):
    from generation.runs.services import run_stop

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    run_stop(run=_hooked_run(team))
    body = json.loads(Delivery.objects.get(event="run.finished").body)
    assert body["data"]["run"]["status"] == "stopped"


def test_a_run_its_worker_crashed_on_announces_that_it_finished(team, settings):
    from generation.runs.services import run_fail

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    run_fail(run_id=_hooked_run(team).pk, reason="The worker hit an internal error")
    body = json.loads(Delivery.objects.get(event="run.finished").body)
    assert body["data"]["run"]["status"] == "failed"
