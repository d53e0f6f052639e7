"""/metrics: Prometheus text, protected by a token or an allowed network, counting what the database holds."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from prometheus_client.parser import text_string_to_metric_families

from generation.providers.simulated import SimulatedProvider
from generation.runs import services
from generation.runs.execution import run_execute
from projects import services as project_services

pytestmark = pytest.mark.django_db(transaction=True)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_the_attempts_of_a_run(client, team):
    for prompt in ("A river", "A goat", "A forbidden lantern"):
        project_services.scene_create(project=team.project, prompt=prompt)
    run, _ = services.run_start(project=team.project, user=team.editor, overrides={"backoff_base": 0.01})
    provider = SimulatedProvider(latency=0.01, safety_word="forbidden")
    async_to_sync(run_execute)(run_id=run.pk, worker="w1", provider=provider)

    found = samples(client.get("/metrics").content.decode())
    name = run.provider
    assert (
        found[("scenestudio_generation_attempts_total", (("outcome", "succeeded"), ("provider", name)))] == 2
    )
    assert found[("scenestudio_generation_attempts_total", (("outcome", "safety"), ("provider", name)))] == 1
    assert found[("scenestudio_provider_request_seconds_count", (("provider", name),))] == 3
    assert found[("scenestudio_runs", (("status", "completed"),))] == 1
    assert found[("scenestudio_runs_waiting_for_worker", ())] == 0
    assert ("scenestudio_quota_wait_seconds_total", ()) in found


def test_metrics_refuse_other_networks_without_the_token(client, settings, db):
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    wrong = client.get("/metrics", REMOTE_ADDR="203.0.113.9", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    right = client.get("/metrics", REMOTE_ADDR="203.0.113.9", headers={"Authorization": "Bearer scrape-me"})
    assert right.status_code == 200 and b"scenestudio_runs" in right.content


def test_metrics_answer_an_allowed_network(client, settings, db):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.2.3.4").status_code == 200
    assert client.get("/metrics").status_code == 403  # loopback is no longer in the list
