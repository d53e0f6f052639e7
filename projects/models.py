from __future__ import annotations

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.db.models.fields.files import ImageFieldFile
from django.urls import reverse

from projects.images import SUFFIXES, detect_image_format, validate_new_image_file


def _private_path(kind: str, instance: models.Model, filename: str) -> str:
    # Callers name the file after its detected content (ContentTypedFile.save, the runner): a suffix
    # from anywhere else is a bug that would let a client pick how the file is served.
    suffix = PurePosixPath(filename).suffix
    if suffix not in SUFFIXES:
        raise ValueError(f"{filename!r}: an image is stored under the suffix of its detected format")
    return f"projects/{instance.project_id}/{kind}/{uuid.uuid4().hex}{suffix}"


def scene_image_path(instance: models.Model, filename: str) -> str:
    return _private_path("scenes", instance, filename)


def character_reference_path(instance: models.Model, filename: str) -> str:
    return _private_path("characters", instance, filename)


class ContentTypedFile(ImageFieldFile):
    def save(self, name: str, content, save: bool = True) -> None:
        """Stored under the suffix of the format Pillow reads in the content, whatever the name says;
        NotAnImage when it is not a PNG, JPEG, WebP or GIF."""
        fmt = detect_image_format(content)
        super().save(f"{PurePosixPath(name).stem or 'image'}{fmt.suffix}", content, save)


class PrivateImageField(models.ImageField):
    """An image that reaches storage only as one of the four formats, named after its content."""

    attr_class = ContentTypedFile
    default_validators = [validate_new_image_file]


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


ROLE_RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.OWNER: 3}


class Project(models.Model):
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")
    provider = models.CharField(max_length=40, blank=True, help_text="Blank: the studio's default provider")
    provider_model = models.CharField(max_length=100, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("project_detail", args=[self.pk])

    def next_position(self) -> int:
        last = self.scenes.aggregate(m=models.Max("position"))["m"]
        return (last or 0) + 1


class Membership(models.Model):
    project = models.ForeignKey(Project, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="unique_member")]
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project}"

    def allows(self, needed: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[needed]


class Character(models.Model):
    project = models.ForeignKey(Project, models.CASCADE, related_name="characters")
    name = models.CharField(max_length=100)
    aliases = models.TextField(blank=True, help_text="Other names, separated by commas")
    description = models.TextField(blank=True, help_text="Used to generate the reference portrait")
    reference = PrivateImageField(upload_to=character_reference_path, blank=True)
    claimed_by = models.PositiveBigIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_character_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def alias_list(self) -> list[str]:
        from projects.mentions import aliases_from_text

        return aliases_from_text(self.aliases)

    def has_reference(self) -> bool:
        return bool(self.reference)


class Scene(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        GENERATING = "generating", "Generating"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    project = models.ForeignKey(Project, models.CASCADE, related_name="scenes")
    # Plain integer, not positive: reordering parks rows at temporary offsets to dodge the unique constraint.
    position = models.IntegerField()
    title = models.CharField(max_length=200, blank=True)
    prompt = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    image = PrivateImageField(upload_to=scene_image_path, blank=True)
    last_error = models.TextField(blank=True)
    # The run that holds this scene; set and cleared by conditional updates so two runs never share a scene.
    claimed_by = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    characters = models.ManyToManyField(Character, blank=True, related_name="scenes")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "position"], name="unique_scene_position")]
        ordering = ["project", "position"]

    def __str__(self) -> str:
        return f"Scene {self.position}"

    def has_prompt(self) -> bool:
        return bool(self.prompt.strip())

    def has_image(self) -> bool:
        return bool(self.image)

    def skip_reason(self, *, regenerate: bool = False) -> str:
        """Why a batch run would skip this scene, or "" when it needs generating."""
        if not self.has_prompt():
            return "empty prompt"
        if self.has_image() and not regenerate:
            return "already generated"
        return ""

    def excerpt(self, length: int = 120) -> str:
        text = " ".join(self.prompt.split())
        return text if len(text) <= length else text[: length - 1].rstrip() + "…"
