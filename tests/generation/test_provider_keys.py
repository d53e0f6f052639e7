"""A project's own provider keys: sealed at rest, never shown back, owners only, and sent by its runs."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.test import Client

from generation.credentials.models import ProviderKey
from generation.credentials.services import project_api_key, provider_key_remove, provider_key_set
from generation.credentials.vault import KeyUnreadable, seal, unseal
from generation.models import BatchRun
from generation.providers.redact import redact
from generation.runs import providers as factory
from generation.runs import services
from generation.runs.execution import run_execute
from projects import services as project_services
from projects.models import Membership, Role
from tests.api.conftest import bearer
from tests.generation.conftest import FAST

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "sk-project-own-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_providers():
    factory.provider_cache_clear()
    yield
    factory.provider_cache_clear()


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# -- sealing -------------------------------------------------------------------------------------------


def test_a_sealed_key_holds_no_trace_of_the_key_and_opens_again(settings):
    sealed = seal(SECRET)
    assert SECRET not in sealed and SECRET[-12:] not in sealed
    assert unseal(sealed) == SECRET


def test_a_rotated_secret_still_opens_keys_sealed_before_it(settings):
    settings.PROVIDER_KEYS_SECRETS = ["old-secret"]
    sealed = seal(SECRET)
    settings.PROVIDER_KEYS_SECRETS = ["new-secret", "old-secret"]
    assert unseal(sealed) == SECRET
    settings.PROVIDER_KEYS_SECRETS = ["new-secret"]
    with pytest.raises(KeyUnreadable, match="set it again"):
        unseal(sealed)


def test_keys_are_sealed_with_the_secret_key_when_no_secret_is_set(settings):
    settings.PROVIDER_KEYS_SECRETS = []
    sealed = seal(SECRET)
    settings.SECRET_KEY = "another-secret-key-entirely-0123456789"
    with pytest.raises(KeyUnreadable):
        unseal(sealed)


# -- the service ---------------------------------------------------------------------------------------


def test_setting_a_key_stores_it_sealed_and_replacing_keeps_one_row(team):
    provider_key_set(project=team.project, provider="openai", secret=f"  {SECRET}\n", user=team.owner)
    key = provider_key_set(project=team.project, provider="openai", secret=SECRET + "XY", user=team.owner)
    row = ProviderKey.objects.get(project=team.project)
    assert (row.pk, row.hint, row.created_by) == (key.pk, "efXY", team.owner)
    assert SECRET not in row.sealed
    assert project_api_key(project_id=team.project.pk, provider="openai") == SECRET + "XY"
    assert project_api_key(project_id=team.project.pk, provider="gemini") == ""


@pytest.mark.parametrize(
    ("provider", "secret", "code"),
    [
        ("comfyui", SECRET, "provider"),
        ("openai", "short", "secret"),
        ("openai", "sk-two words-0123456789", "secret"),
        ("openai", "sk-line\nbreak-0123456789", "secret"),
        ("openai", "sk-ключ-0123456789", "secret"),
        ("openai", "x" * 401, "secret"),
    ],
)
def test_a_key_that_cannot_work_is_refused_with_its_field(team, provider, secret, code):
    with pytest.raises(ValidationError) as caught:
        provider_key_set(project=team.project, provider=provider, secret=secret, user=team.owner)
    assert caught.value.code == code
    assert not ProviderKey.objects.exists()


def test_removing_a_key_leaves_the_other_projects_key(team, make_user):
    other = project_services.project_create(title="Other", user=team.owner)
    for project in (team.project, other):
        provider_key_set(project=project, provider="openai", secret=SECRET, user=team.owner)
    assert provider_key_remove(project=team.project, provider="openai", user=team.owner)
    assert not provider_key_remove(project=team.project, provider="openai", user=team.owner)
    assert list(ProviderKey.objects.values_list("project", flat=True)) == [other.pk]


# -- the page ------------------------------------------------------------------------------------------


def test_an_owner_sets_a_key_that_the_page_never_shows_back(team):
    owner = client_of(team.owner)
    url = f"/projects/{team.project.pk}/provider-keys/"
    response = owner.post(url, {"provider": "openai", "secret": SECRET}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "…cdef" in page and SECRET not in page and SECRET[:-4] not in page
    assert project_api_key(project_id=team.project.pk, provider="openai") == SECRET
    settings_page = owner.get(f"/projects/{team.project.pk}/edit/").content.decode()
    assert "this project&#x27;s own key (…cdef)" in settings_page and SECRET not in settings_page


def test_a_bad_key_is_refused_on_the_page_and_nothing_is_stored(team):
    response = client_of(team.owner).post(
        f"/projects/{team.project.pk}/provider-keys/", {"provider": "openai", "secret": "sk-two words-0123"}
    )
    assert response.status_code == 200
    assert "no spaces" in response.content.decode()
    assert not ProviderKey.objects.exists()


@pytest.mark.parametrize(("role", "status"), [("editor", 403), ("viewer", 403), ("outsider", 404)])
def test_only_owners_reach_the_keys_page(team, role, status):
    client = client_of(team.user(role))
    url = f"/projects/{team.project.pk}/provider-keys/"
    assert client.get(url).status_code == status
    assert client.post(url, {"provider": "openai", "secret": SECRET}).status_code == status
    assert not ProviderKey.objects.exists()


def test_an_owner_of_two_projects_removes_only_the_key_of_the_page_they_are_on(team, make_user):
    both = make_user("bea")
    Membership.objects.create(project=team.project, user=both, role=Role.OWNER)
    other = project_services.project_create(title="Other", user=both)
    for project in (team.project, other):
        provider_key_set(project=project, provider="openai", secret=SECRET, user=both)
    response = client_of(both).post(f"/projects/{other.pk}/provider-keys/", {"remove": "openai"})
    assert response.status_code == 302
    assert list(ProviderKey.objects.values_list("project", flat=True)) == [team.project.pk]


# -- the API -------------------------------------------------------------------------------------------


def test_the_api_sets_lists_and_removes_a_key_without_ever_returning_it(team):
    api = bearer(team.owner)
    base = f"/api/projects/{team.project.pk}/provider-keys"
    put = api.put(base + "/openai", {"secret": SECRET}, content_type="application/json")
    assert put.status_code == 200, put.content
    listed = api.get(base)
    assert [(k["provider"], k["hint"]) for k in listed.json()] == [("openai", "cdef")]
    assert SECRET not in put.content.decode() + listed.content.decode()
    bad = api.put(base + "/openai", {"secret": "short"}, content_type="application/json")
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "secret")
    assert api.delete(base + "/openai").status_code == 204
    assert api.delete(base + "/openai").json()["code"] == "not_found"


# -- runs ----------------------------------------------------------------------------------------------


def test_projects_with_their_own_keys_get_providers_of_their_own(team, settings):
    settings.GENERATION_PROVIDERS = {
        **settings.GENERATION_PROVIDERS,
        "openai": {"api_key": "sk-studio-0123456789"},
    }
    other = project_services.project_create(title="Other", user=team.owner)
    provider_key_set(project=team.project, provider="openai", secret=SECRET, user=team.owner)
    own = factory.project_provider(project_id=team.project.pk, name="openai")
    studio = factory.project_provider(project_id=other.pk, name="openai")
    assert own.credential != studio.credential  # a limiter and a learned profile each
    assert own is factory.project_provider(project_id=team.project.pk, name="openai")
    assert studio is factory.provider_for("openai")
    # Built once, the key is scrubbed from any text a member may read, as the studio's own is.
    assert SECRET not in redact(f"401: invalid key {SECRET}")


async def test_a_run_sends_the_projects_own_key(team, fake, settings):
    settings.GENERATION_PROVIDERS = {
        **settings.GENERATION_PROVIDERS,
        "fake": {"base_url": fake.url, "flavor": "openai", "api_key": "studio-key-0123456789"},
    }

    def prepare() -> BatchRun:
        team.project.provider = "fake"
        team.project.save()
        for n in (1, 2):
            project_services.scene_create(project=team.project, prompt=f"Scene {n}")
        provider_key_set(project=team.project, provider="fake", secret=SECRET, user=team.owner)
        run, _ = services.run_start(project=team.project, user=team.editor, overrides=FAST)
        return run

    run = await database_sync_to_async(prepare)()
    done = await run_execute(run_id=run.pk, worker="w1")
    assert (done.status, done.succeeded) == ("completed", 2)
    sent = {r.headers.get("authorization") for r in fake.requests}
    assert sent == {f"Bearer {SECRET}"}


def test_a_run_whose_key_cannot_be_unsealed_is_refused_and_says_why(team, settings):
    project_services.scene_create(project=team.project, prompt="A river")
    team.project.provider = "openai"
    team.project.save()
    provider_key_set(project=team.project, provider="openai", secret=SECRET, user=team.owner)
    settings.PROVIDER_KEYS_SECRETS = ["a-secret-the-key-was-not-sealed-with"]
    with pytest.raises(services.RunRefused, match=r"openai key cannot be used: .*set it again"):
        services.run_start(project=team.project, user=team.editor)
    assert not BatchRun.objects.exists()


async def test_a_run_whose_key_became_unreadable_after_it_started_fails_with_the_reason(team, settings):
    def prepare() -> BatchRun:
        project_services.scene_create(project=team.project, prompt="A river")
        team.project.provider = "openai"
        team.project.save()
        provider_key_set(project=team.project, provider="openai", secret=SECRET, user=team.owner)
        run, _ = services.run_start(project=team.project, user=team.editor, overrides=FAST)
        return run

    run = await database_sync_to_async(prepare)()
    settings.PROVIDER_KEYS_SECRETS = ["rotated-without-the-old-secret"]
    done = await run_execute(run_id=run.pk, worker="w1")
    assert done.status == "failed"
    assert "openai key cannot be used" in done.reason
    assert await database_sync_to_async(team.project.scenes.filter(status="generating").count)() == 0
