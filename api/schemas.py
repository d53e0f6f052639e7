"""Request and response shapes of the API (they are also the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.urls import reverse
from ninja import Field, Schema

RoleName = Literal["owner", "editor", "viewer"]


class Error(Schema):
    code: str
    message: str


class ProjectIn(Schema):
    title: str = Field(min_length=1, max_length=200)
    description: str = ""


class ProjectPatch(Schema):
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None
    provider: str | None = Field(None, max_length=40)
    provider_model: str | None = Field(None, max_length=100)


class ProjectOut(Schema):
    id: int
    title: str
    description: str
    provider: str
    provider_model: str
    created: datetime
    updated: datetime
    url: str

    @staticmethod
    def resolve_url(obj) -> str:
        return reverse("api:project_get", args=[obj.pk])


class MemberIn(Schema):
    username: str = Field(min_length=1, max_length=150)
    role: RoleName = "editor"


class MemberPatch(Schema):
    role: RoleName


class MemberOut(Schema):
    id: int
    username: str
    role: str
    created: datetime

    @staticmethod
    def resolve_username(obj) -> str:
        return obj.user.username


class SceneIn(Schema):
    prompt: str = Field("", max_length=20000)
    title: str = Field("", max_length=200)
    position: int | None = Field(None, ge=1)
    character_ids: list[int] | None = None


class ScenePatch(Schema):
    prompt: str | None = Field(None, max_length=20000)
    title: str | None = Field(None, max_length=200)
    character_ids: list[int] | None = None


class MoveIn(Schema):
    position: int = Field(ge=1)


class ReorderIn(Schema):
    scene_ids: list[int]


class SceneOut(Schema):
    id: int
    position: int
    title: str
    prompt: str
    status: str
    last_error: str
    has_image: bool
    image_url: str | None
    character_ids: list[int]
    updated: datetime

    @staticmethod
    def resolve_has_image(obj) -> bool:
        return bool(obj.image)

    @staticmethod
    def resolve_image_url(obj) -> str | None:
        return reverse("api:scene_image", args=[obj.project_id, obj.pk]) if obj.image else None

    @staticmethod
    def resolve_character_ids(obj) -> list[int]:
        return sorted(c.pk for c in obj.characters.all())


class ImportIn(Schema):
    text: str = Field(min_length=1)
    format: Literal["auto", "text", "numbered", "csv", "json"] = "auto"
    mode: Literal["append", "replace"] = "append"
    filename: str = ""


class ImportOut(Schema):
    imported: int
    scenes: list[SceneOut]


class CharacterIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    aliases: str = ""
    description: str = ""


class CharacterPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    aliases: str | None = None
    description: str | None = None


class CharacterOut(Schema):
    id: int
    name: str
    aliases: str
    description: str
    has_reference: bool
    reference_url: str | None

    @staticmethod
    def resolve_has_reference(obj) -> bool:
        return bool(obj.reference)

    @staticmethod
    def resolve_reference_url(obj) -> str | None:
        return reverse("api:character_reference", args=[obj.project_id, obj.pk]) if obj.reference else None


class RunIn(Schema):
    """What the page's buttons and `manage.py generate` offer: all scenes, some, the failed ones, or the
    missing character references; regenerate ready scenes; another provider; a concurrency cap."""

    kind: Literal["scenes", "characters"] = "scenes"
    scene_ids: list[int] | None = None
    character_ids: list[int] | None = None
    failed_only: bool = False
    regenerate: bool = False
    provider: str = ""
    concurrency: int | None = Field(None, ge=1, le=64)


class RunOut(Schema):
    id: int
    status: str
    active: bool
    kind: str
    total: int
    succeeded: int
    failed: int
    skipped: int
    requests: int
    retries: int
    quota_errors: int
    quota_wait_seconds: float
    reason: str
    summary: str
    requested_by: str
    created: str
    started: str | None
    finished: str | None
    quota_resume_at: str | None
    url: str
    page_url: str
    created_now: bool = Field(False, description="True when this request started the run")


class AttemptOut(Schema):
    id: int
    run_id: int
    scene_id: int | None
    character_id: int | None
    number: int
    status: str
    error_kind: str
    error_message: str
    http_status: int | None
    provider: str
    model: str
    seed: int | None
    latency_ms: int | None
    started: datetime
    finished: datetime | None


class VersionOut(Schema):
    id: int
    number: int
    provider: str
    model: str
    seed: int | None
    prompt: str
    attempts: int
    created: datetime
    current: bool

    @staticmethod
    def resolve_current(obj) -> bool:
        return obj.is_current()
