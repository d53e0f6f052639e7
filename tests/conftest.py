"""Shared fixtures: a project with an owner, an editor, a viewer, and an outsider who is not a member."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from PIL import Image

from generation.fakeprovider import FakeConfig, FakeProviderServer
from generation.fakeprovider.limits import Limits
from projects import services
from projects.models import Membership, Project, Role, Scene


def pytest_configure(config: pytest.Config) -> None:
    # `-m "not postgres"` leaves out the tests that start a throwaway PostgreSQL.
    config.addinivalue_line("markers", "postgres: starts a PostgreSQL server on loopback")
    # `-m faults` selects the infrastructure fault suite (tests/faults); `make test` runs it.
    config.addinivalue_line("markers", "faults: infrastructure faults (disk, database, Redis, signals)")


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviderServer]:
    """The fake provider server on loopback (every wire format), seeded for repeatable images."""
    async with FakeProviderServer(FakeConfig(seed=7)) as server:
        yield server


class QuotaClock:
    """The fake server's quota clock, moved by the test instead of the wall: on a loaded machine a
    window of a fraction of a second rolled between two requests, and one meant to be refused was not."""

    def __init__(self, fake: FakeProviderServer) -> None:
        self.now = 0.0
        fake.limits = Limits(lambda: fake.config, clock=lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def png_bytes(size: tuple[int, int] = (64, 48), color: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Team:
    project: Project
    owner: object
    editor: object
    viewer: object
    outsider: object

    def user(self, role: str):
        return getattr(self, role)


@pytest.fixture
def make_user(db):
    def make(username: str):
        return get_user_model().objects.create_user(username=username, password="pw-" + username)

    return make


@pytest.fixture
def team(make_user) -> Team:
    owner = make_user("olivia")
    project = services.project_create(title="The Tale", description="", user=owner)
    editor, viewer, outsider = make_user("eddie"), make_user("vera"), make_user("oscar")
    Membership.objects.create(project=project, user=editor, role=Role.EDITOR)
    Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)
    return Team(project=project, owner=owner, editor=editor, viewer=viewer, outsider=outsider)


@pytest.fixture
def scenes(team) -> list[Scene]:
    return [services.scene_create(project=team.project, prompt=f"Scene prompt {i}") for i in range(1, 6)]
