"""Owners manage webhook endpoints through the API with the page's rules."""

from __future__ import annotations

import pytest

from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


def test_a_private_url_is_refused_on_the_url_field(team, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    response = bearer(team.owner).post(
        f"/api/projects/{team.project.pk}/webhooks",
        {"url": "http://10.0.0.5/hook"},
        content_type="application/json",
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "url"


def test_an_unknown_event_is_refused_on_the_events_field(team):
    response = bearer(team.owner).post(
        f"/api/projects/{team.project.pk}/webhooks",
        {"url": "http://127.0.0.1:9/hook", "events": ["run.exploded"]},
        content_type="application/json",
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "events"


def test_a_new_endpoint_answers_with_its_signing_secret(team):
    client = bearer(team.owner)
    created = client.post(
        f"/api/projects/{team.project.pk}/webhooks",
        {"url": "http://127.0.0.1:9/hook", "events": ["run.finished"]},
        content_type="application/json",
    ).json()
    assert created["secret"].startswith("whsec_") and created["events"] == ["run.finished"]
    listed = client.get(f"/api/projects/{team.project.pk}/webhooks").json()
    assert [e["id"] for e in listed["items"]] == [created["id"]]
