"""API fixtures: the shared team plus a world of objects in its project, a second project, and tokens."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from api.services import token_create
from generation.credentials.services import provider_key_set
from generation.models import BatchRun, GenerationAttempt, SceneVersion
from projects import services
from projects.models import Membership, Project, Role
from tests.conftest import png_bytes
from webhooks.models import Delivery, Endpoint


@pytest.fixture(autouse=True)
def _loopback_webhooks(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Rate-limit counters live in the cache, keyed by token id; ids repeat across tests' databases.
    cache.clear()


@dataclass
class Objects:
    """One of each kind of object a project URL can name."""

    project: Project
    scene: int
    character: int
    run: int
    member: int
    version: int
    endpoint: int
    delivery: int

    def ids(self) -> dict[str, int]:
        return {
            "p": self.project.pk,
            "s": self.scene,
            "c": self.character,
            "r": self.run,
            "m": self.member,
            "v": self.version,
            "w": self.endpoint,
            "d": self.delivery,
        }


def populate(project: Project, *, viewer) -> Objects:
    """Scenes (one generated, with a version), a character with a reference, a finished run."""
    hero = services.character_save(project=project, name="Gopal", description="a jester")
    hero.reference.save("gopal.png", ContentFile(png_bytes(color="orange")), save=True)
    first = services.scene_create(project=project, prompt="Gopal at dawn")
    second = services.scene_create(project=project, prompt="A river")
    run = BatchRun.objects.create(
        project=project, provider="sketch", status=BatchRun.Status.STOPPED, total=2, succeeded=1
    )
    run.scenes.set([first, second])
    now = timezone.now()
    attempt = GenerationAttempt.objects.create(
        run=run, scene=first, number=1, status="succeeded", provider="sketch", started=now, finished=now
    )
    first.image.save("first.png", ContentFile(png_bytes()), save=False)
    first.status = "ready"
    first.save()
    version = SceneVersion.objects.create(scene=first, number=1, image=first.image.name, attempt=attempt)
    member = Membership.objects.get(project=project, user=viewer)
    endpoint = Endpoint.objects.create(project=project, url="http://127.0.0.1:9/hook")
    delivery = Delivery.objects.create(endpoint=endpoint, event="run.started", body="{}", next_attempt=now)
    provider_key_set(project=project, provider="gemini", secret=f"AIza-project-{project.pk}-key", user=None)
    return Objects(project, first.pk, hero.pk, run.pk, member.pk, version.pk, endpoint.pk, delivery.pk)


@pytest.fixture
def world(team) -> Objects:
    return populate(team.project, viewer=team.viewer)


@pytest.fixture
def other(team, make_user) -> tuple[object, Objects]:
    """A user who owns both the team's project and project B; B has objects of every kind too."""
    both = make_user("bea")
    Membership.objects.create(project=team.project, user=both, role=Role.OWNER)
    project_b = services.project_create(title="Other tale", user=both)
    Membership.objects.create(project=project_b, user=team.viewer, role=Role.VIEWER)
    return both, populate(project_b, viewer=team.viewer)


def bearer(user, **options) -> Client:
    """A client that authenticates with a new personal access token of `user` (and no session)."""
    _, raw = token_create(user=user, name="test", **options)
    return Client(headers={"Authorization": f"Bearer {raw}"})
