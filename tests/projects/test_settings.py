from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="studio.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", DEBUG="false", ALLOWED_HOSTS="studio.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_static_files_are_served_without_a_separate_server(client):
    response = client.get("/static/css/studio.css")
    assert response.status_code == 200
    assert b".grid" in b"".join(response.streaming_content)


def test_an_owner_picks_the_projects_provider_and_model(client, team):
    from django.urls import reverse

    client.force_login(team.owner)
    url = reverse("project_edit", args=[team.project.pk])
    body = client.get(url).content.decode()
    assert "Studio default" in body and 'value="openai"' in body
    response = client.post(url, {"title": "The Tale", "provider": "gemini", "provider_model": "imagen-4.0"})
    assert response.status_code == 302
    team.project.refresh_from_db()
    assert (team.project.provider, team.project.provider_model) == ("gemini", "imagen-4.0")
    assert client.post(url, {"title": "T", "provider": "nope"}).status_code == 200  # not a choice


def test_provider_secrets_are_never_shown_in_the_settings_page(client, team, settings):
    from django.urls import reverse

    settings.GENERATION_PROVIDERS = {**settings.GENERATION_PROVIDERS, "openai": {"api_key": "sk-very-secret"}}
    client.force_login(team.owner)
    assert (
        "sk-very-secret" not in client.get(reverse("project_edit", args=[team.project.pk])).content.decode()
    )


@pytest.mark.parametrize("provider", ["simulated", "fake"])
def test_test_only_providers_are_neither_offered_nor_accepted_unless_debug(client, team, settings, provider):
    from django.urls import reverse

    settings.DEBUG = False
    client.force_login(team.owner)
    url = reverse("project_edit", args=[team.project.pk])
    assert f'value="{provider}"' not in client.get(url).content.decode()
    response = client.post(url, {"title": "The Tale", "provider": provider})
    assert response.status_code == 200
    team.project.refresh_from_db()
    assert team.project.provider == ""


def test_test_only_providers_are_offered_while_debugging(client, team, settings):
    from django.urls import reverse

    settings.DEBUG = True
    client.force_login(team.owner)
    url = reverse("project_edit", args=[team.project.pk])
    assert 'value="simulated"' in client.get(url).content.decode()
    assert client.post(url, {"title": "The Tale", "provider": "simulated"}).status_code == 302
    team.project.refresh_from_db()
    assert team.project.provider == "simulated"
