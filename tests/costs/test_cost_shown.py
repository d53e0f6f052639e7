from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from generation.costs.models import Price
from generation.models import BatchRun, GenerationAttempt
from generation.runs import providers as factory
from generation.runs.selectors import run_payload
from projects import services as project_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def spent(team):
    scene = project_services.scene_create(project=team.project, prompt="A lighthouse")
    run = BatchRun.objects.create(
        project=team.project, provider="openai", status="completed", cost=Decimal("0.126"), unpriced=1
    )
    GenerationAttempt.objects.create(
        run=run,
        scene=scene,
        number=1,
        provider="openai",
        status="succeeded",
        cost=Decimal("0.063"),
        started="2026-12-01T10:00Z",
    )
    return run


def test_the_run_payload_and_status_show_spent_cost_with_unpriced_apart(client, team, spent):
    assert run_payload(spent)["cost_text"] == "$0.1260 + 1 unpriced"
    client.force_login(team.viewer)
    status = client.get(reverse("project_status", args=[team.project.pk])).json()
    assert status["run"]["cost"] == "0.126000" and status["run"]["unpriced"] == 1


def test_the_project_page_shows_what_the_project_spent(client, team, spent):
    client.force_login(team.viewer)
    page = client.get(team.project.get_absolute_url()).content.decode()
    assert "Spent on this project: $0.1260" in page


def test_the_admin_lists_run_and_attempt_costs_and_edits_prices(admin_client, spent):
    runs = admin_client.get(reverse("admin:generation_batchrun_changelist")).content.decode()
    assert "$0.1260 + 1 unpriced" in runs
    attempts = admin_client.get(reverse("admin:generation_generationattempt_changelist")).content.decode()
    assert "$0.0630" in attempts
    Price.objects.create(provider="openai", model="gpt-image-2", per_image=None, effective=date(2026, 11, 1))
    prices = admin_client.get(
        reverse("admin:generation_price_changelist") + "?q=gpt-image-2"
    ).content.decode()
    assert "unpriced" in prices


def test_the_zip_manifest_includes_the_cost(client, team, spent):
    scene = team.project.scenes.get()
    from django.core.files.base import ContentFile

    from tests.conftest import png_bytes

    scene.image.save("s.png", ContentFile(png_bytes()), save=True)
    client.force_login(team.viewer)
    response = client.get(reverse("project_export_zip", args=[team.project.pk]))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["cost"] == {"usd": "0.126000", "unpriced_images": 1, "text": "$0.1260 + 1 unpriced"}


@pytest.mark.django_db(transaction=True)
def test_generate_prints_the_run_cost(team, settings):
    factory.provider_cache_clear()
    settings.GENERATION_PROVIDERS = {**settings.GENERATION_PROVIDERS, "simulated": {"latency": 0.001}}
    project_services.scene_create(project=team.project, prompt="A lighthouse")
    out = io.StringIO()
    call_command(
        "generate", str(team.project.pk), "--provider", "simulated", stdout=out, stderr=io.StringIO()
    )
    assert "Cost: $0.0000" in out.getvalue()
    factory.provider_cache_clear()
