from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from generation.costs.estimates import estimate
from generation.costs.models import LearnedProfile
from generation.costs.profiles import DatabaseProfileStore, credential_hash, profile_for
from generation.engine.config import EngineConfig
from generation.engine.profile import CredentialProfile
from generation.models import BatchRun
from generation.providers.simulated import SimulatedProvider
from generation.runs import providers as factory
from projects import services as project_services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_simulated")]


@pytest.fixture
def twenty(team):
    team.project.provider = "simulated"
    team.project.save()
    return [project_services.scene_create(project=team.project, prompt=f"Shot {i}") for i in range(20)]


def command(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def seconds_in(text: str) -> float:
    match = re.search(r"Expected duration: (?:(\d+) h )?(?:(\d+) min ?)?(?:(\d+) s)?", text)
    assert match, text
    hours, minutes, secs = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + secs


def test_plan_prints_expected_duration_and_requests_from_the_real_scheduler(team, twenty):
    slow = command("plan", str(team.project.pk), "--rpm", "10", "--latency", "5")
    fast = command("plan", str(team.project.pk), "--rpm", "600", "--latency", "5")
    assert "Scenes to generate: 20" in slow and "Expected requests:" in slow
    # 20 requests at 10 a minute take at least one more window than the quota allows at once.
    assert 60 <= seconds_in(slow) <= 300
    assert seconds_in(fast) < 30


def test_generate_dry_run_shows_the_estimate_and_starts_nothing(team, twenty):
    output = command("generate", str(team.project.pk), "--dry-run")
    assert "Scenes to generate: 20" in output
    assert "Expected cost: $0.0000" in output  # the simulated provider is free, not unpriced
    assert "Expected duration:" in output
    assert not BatchRun.objects.exists()


def test_a_run_saves_its_learned_profile_under_a_hash_of_the_credential_and_the_next_starts_from_it(
    team, twenty
):
    command("generate", str(team.project.pk))
    provider = factory.provider_for("simulated")
    row = LearnedProfile.objects.get()
    assert row.provider == "simulated" and row.credential_hash == credential_hash(provider.credential)
    assert provider.credential not in str(row.values)
    assert row.jobs == 20 and row.requests >= 20
    learned = profile_for(provider)
    assert learned is not None and learned.latency_mean is not None


def test_the_estimate_uses_the_observed_retry_rate_and_the_learned_daily_cap():
    provider = SimulatedProvider(latency=1.0)
    store = DatabaseProfileStore("simulated")
    store.save_sync(
        provider.credential, CredentialProfile(daily_cap=3, latency_mean=1.0), jobs=10, requests=15
    )
    result = estimate(provider=provider, positions=list(range(1, 9)), config=EngineConfig())
    assert result.retry_rate == pytest.approx(0.5)
    assert result.requests >= 12  # 8 scenes x 1.5 requests each
    assert list(result.today) == [1, 2, 3] and list(result.after_reset) == [4, 5, 6, 7, 8]
    assert any("after the reset (scenes 4-8)" in line for line in result.lines())


@pytest.mark.parametrize("who, status", [("editor", 200), ("viewer", 200), ("outsider", 404)])
def test_the_estimate_page_is_the_confirm_step_before_generate_all(client, team, twenty, who, status):
    client.force_login(team.user(who))
    response = client.get(reverse("run_estimate", args=[team.project.pk]))
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        assert "Scenes to generate" in page and "Expected cost" in page and "Expected duration" in page
        assert ("Generate all scenes" in page) == (who == "editor")


def test_the_project_page_links_to_the_estimate(client, team, twenty):
    client.force_login(team.editor)
    page = client.get(team.project.get_absolute_url()).content.decode()
    assert reverse("run_estimate", args=[team.project.pk]) in page


def test_the_estimate_offers_half_price_within_24_h_where_the_provider_has_a_batch_api(
    client, team, settings
):
    from generation.fakeprovider import FakeConfig, FakeProviderServer

    with FakeProviderServer(FakeConfig()) as fake:
        settings.GENERATION_PROVIDERS = {**settings.GENERATION_PROVIDERS, "fake": {"base_url": fake.url}}
        factory.provider_cache_clear()
        team.project.provider = "fake"
        team.project.save()
        for i in range(10):
            project_services.scene_create(project=team.project, prompt=f"Shot {i}")
        client.force_login(team.editor)
        page = client.get(reverse("run_estimate", args=[team.project.pk])).content.decode()
    # 10 images of gpt-image-1 at medium quality, 1536x1024: $0.63, or $0.315 as a batch.
    assert "$0.6300" in page
    assert "Half price, within 24 h ($0.3150, saves $0.3150)" in page
    assert reverse("run_action", args=[team.project.pk, "start_batch"]) in page
