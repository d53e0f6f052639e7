from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Exists
from django.db.models.fields.files import ImageFieldFile
from django.urls import reverse
from django.utils import timezone

from projects.images import SUFFIXES, detect_image_format, validate_new_image_file
from projects.notes import NOTE_FIELDS, NOTE_LABELS, NOTE_MAX_LENGTH
from projects.style import ASPECT_SIZES, validate_style_template
from projects.updates import update_each

ASPECT_CHOICES = [(aspect, aspect) for aspect in ASPECT_SIZES]


def private_image_path(kind: str, project_id: int, filename: str) -> str:
    """Where a project's image of `kind` ("scenes", "characters") named `filename` is stored."""
    # Callers name the file after its detected content (ContentTypedFile.save, the runner): a suffix
    # from anywhere else is a bug that would let a client pick how the file is served.
    suffix = PurePosixPath(filename).suffix
    if suffix not in SUFFIXES:
        raise ValueError(f"{filename!r}: an image is stored under the suffix of its detected format")
    return f"projects/{project_id}/{kind}/{uuid.uuid4().hex}{suffix}"


def scene_image_path(instance: models.Model, filename: str) -> str:
    return private_image_path("scenes", instance.project_id, filename)


def character_reference_path(instance: models.Model, filename: str) -> str:
    return private_image_path("characters", instance.project_id, filename)


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
    # The project style, applied to every scene request (projects/style.py composes and validates it).
    style_prefix = models.TextField(
        blank=True,
        validators=[validate_style_template],
        help_text="Before every scene prompt; may use {prompt}, {shot}, {camera}, {characters}",
    )
    style_suffix = models.TextField(
        blank=True, validators=[validate_style_template], help_text="After every scene prompt"
    )
    negative_prompt = models.TextField(blank=True, help_text="What to avoid, where the provider supports it")
    aspect_ratio = models.CharField(max_length=8, blank=True, choices=ASPECT_CHOICES, help_text="Blank: 3:2")
    size = models.CharField(
        max_length=12,
        blank=True,
        validators=[RegexValidator(r"^[1-9][0-9]{2,3}x[1-9][0-9]{2,3}$", "Write the size as WIDTHxHEIGHT.")],
        help_text="WIDTHxHEIGHT; blank: the aspect ratio's default size",
    )
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


class Invitation(models.Model):
    """A link that lets one person join a project with a role; single use, expiring, revocable."""

    project = models.ForeignKey(Project, models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    email = models.EmailField(blank=True, help_text="Optional: the link is also mailed there")
    token = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField()
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    accepted = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"Invitation to {self.project} as {self.role}"

    def state(self, now=None) -> str:
        now = now or timezone.now()
        if self.revoked:
            return "revoked"
        if self.accepted:
            return "accepted"
        return "expired" if self.expires <= now else "open"

    def is_open(self, now=None) -> bool:
        return self.state(now) == "open"


class Character(models.Model):
    project = models.ForeignKey(Project, models.CASCADE, related_name="characters")
    name = models.CharField(max_length=100)
    aliases = models.TextField(blank=True, help_text="Other names, separated by commas")
    description = models.TextField(blank=True, help_text="Used to generate the reference portrait")
    reference = PrivateImageField(upload_to=character_reference_path, blank=True)
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

    def reference_files(self) -> list[ImageFieldFile]:
        """Every reference image in the order requests send them: `reference` first (the main one),
        then the extra views by position."""
        files = [self.reference] if self.reference else []
        return files + [extra.image for extra in self.extra_references.all() if extra.image]


def extra_reference_path(instance: CharacterReference, filename: str) -> str:
    return private_image_path("characters", instance.character.project_id, filename)


class CharacterReference(models.Model):
    """A further view of a character (profile, full body…) sent after its main reference."""

    character = models.ForeignKey(Character, models.CASCADE, related_name="extra_references")
    image = PrivateImageField(upload_to=extra_reference_path)
    label = models.CharField(max_length=40, blank=True, help_text="e.g. profile, full body")
    position = models.PositiveSmallIntegerField(default=1)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["character", "position", "pk"]

    def __str__(self) -> str:
        return f"{self.character} ({self.label or self.position})"


def clean_notes(values: dict[str, object]) -> dict[str, str]:
    """Only the known notes, as stripped text within their lengths; empty ones left out."""
    notes = {}
    for name in NOTE_FIELDS:
        value = values.get(name)
        text = "" if value is None else str(value).strip()
        if len(text) > NOTE_MAX_LENGTH[name]:
            raise ValidationError(f"The {name} note is longer than {NOTE_MAX_LENGTH[name]} characters.")
        if text:
            notes[name] = text
    return notes


class SkipReason(models.TextChoices):
    """Why a batch run skips a scene: the code pages and events compare, the label people read."""

    EMPTY_PROMPT = "empty_prompt", "empty prompt"
    ALREADY_GENERATED = "already_generated", "already generated"
    BUSY = "busy", "being generated by another run"


def _ready_fields(release: bool) -> dict[str, object]:
    """What showing an image sets besides the image: one place for mark_ready and mark_ready_each."""
    fields: dict[str, object] = {"status": Scene.Status.READY, "last_error": ""}
    if release:
        fields["claimed_by"] = None
    return fields


class SceneQuerySet(models.QuerySet):
    """Every change of Scene.status, in one place. `fence` (an Exists on the run this worker still holds)
    makes the change only while it holds; each returns the number of scenes changed. Also what a run
    reads of many scenes at once (casts)."""

    def casts(self) -> dict[int, list[Character]]:
        """Each of these scenes' characters (extra references prefetched), in the characters' order:
        three queries however many scenes, where prefetching them builds a queryset for every scene."""
        links = Scene.characters.through.objects.filter(scene__in=self.values("pk"))
        pairs = list(links.values_list("scene_id", "character_id"))
        characters = Character.objects.filter(pk__in={character for _, character in pairs})
        by_pk = {c.pk: c for c in characters.prefetch_related("extra_references")}
        order = {pk: index for index, pk in enumerate(by_pk)}
        casts: dict[int, list[Character]] = {}
        for scene, character in sorted(pairs, key=lambda pair: order[pair[1]]):
            casts.setdefault(scene, []).append(by_pk[character])
        return casts

    def _mark(self, fence: Exists | None, **fields: object) -> int:
        scenes = self if fence is None else self.filter(fence)
        return scenes.update(updated=timezone.now(), **fields)

    def mark_generating(self, *, fence: Exists | None = None) -> int:
        return self._mark(fence, status=Scene.Status.GENERATING)

    def mark_ready(self, *, image: str, fence: Exists | None = None, release: bool = True) -> int:
        """Show `image`; `release` also lets go of the run's claim (a generated image ends it)."""
        return self._mark(fence, image=image, **_ready_fields(release))

    def mark_ready_each(self, images: Mapping[int, str], *, release: bool = True) -> int:
        """mark_ready for many scenes at once, each shown with its own image: one statement."""
        rows = {pk: {"image": image} for pk, image in images.items()}
        return update_each(self, rows, updated=timezone.now(), **_ready_fields(release))

    def mark_failed(self, *, reason: str, fence: Exists | None = None) -> int:
        # The prompt the failure was for: after an edit, the reason may no longer apply (failure_is_stale).
        return self._mark(
            fence,
            status=Scene.Status.FAILED,
            last_error=reason[:2000],
            error_prompt=models.F("prompt"),
            claimed_by=None,
        )

    def mark_requeue(self, *, fence: Exists | None = None) -> int:
        """Scenes left mid-generation go back to pending: their requests will never be answered."""
        generating = self.filter(status=Scene.Status.GENERATING)
        return generating._mark(fence, status=Scene.Status.PENDING)

    def mark_skipped(self, *, fence: Exists | None = None) -> int:
        return self._mark(fence, status=Scene.Status.SKIPPED)

    def mark_unskipped(self) -> int:
        """Skipped scenes (an empty prompt) are pending again: their prompt changed, the next run tries."""
        return self.filter(status=Scene.Status.SKIPPED)._mark(None, status=Scene.Status.PENDING)

    def with_image_prompt(self) -> SceneQuerySet:
        """Annotate `image_prompt`: the prompt the current image was generated from (None when no version
        records it), so image_is_stale() needs no query per scene. Order it yourself: with an aggregate
        in the query Django leaves Meta.ordering out."""
        current = models.Q(versions__image=models.F("image"))
        return self.annotate(image_prompt=models.Max("versions__prompt", filter=current))


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
    error_prompt = models.TextField(blank=True, help_text="The prompt the last failure was for")
    # The run that holds this scene; set and cleared by conditional updates so two runs never share a scene.
    claimed_by = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    characters = models.ManyToManyField(Character, blank=True, related_name="scenes")
    # Storyboard notes (NOTE_FIELDS: shot, camera, dialogue, duration), shown on the contact sheet, PDF and
    # ZIP, sent only through the style's placeholders. One JSON column, not four: every column of Scene
    # shrinks SQLite's bulk-insert batch (999 parameters), and imports keep a constant query count.
    notes = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = SceneQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "position"], name="unique_scene_position")]
        ordering = ["project", "position"]

    def __str__(self) -> str:
        return f"Scene {self.position}"

    def has_prompt(self) -> bool:
        return bool(self.prompt.strip())

    def has_image(self) -> bool:
        return bool(self.image)

    def skip_code(self, *, regenerate: bool = False) -> SkipReason | None:
        """Why a batch run would skip this scene, or None when it needs generating."""
        if not self.has_prompt():
            return SkipReason.EMPTY_PROMPT
        if self.has_image() and not regenerate:
            return SkipReason.ALREADY_GENERATED
        return None

    def skip_reason(self, *, regenerate: bool = False) -> str:
        """The same in words, or "" when the scene needs generating."""
        code = self.skip_code(regenerate=regenerate)
        return code.label if code else ""

    @property
    def locked_seed(self) -> int | None:
        """The pinned seed (SceneSeedLock), or None."""
        try:
            return self.seed_lock.seed
        except SceneSeedLock.DoesNotExist:
            return None

    def note(self, name: str) -> str:
        value = (self.notes or {}).get(name, "")
        return value if isinstance(value, str) else str(value)

    @property
    def shot(self) -> str:
        return self.note("shot")

    @property
    def camera(self) -> str:
        return self.note("camera")

    @property
    def dialogue(self) -> str:
        return self.note("dialogue")

    @property
    def duration(self) -> str:
        return self.note("duration")

    def note_items(self) -> list[tuple[str, str]]:
        """The storyboard notes that are filled in, labelled, in reading order."""
        pairs = [(NOTE_LABELS[name], self.note(name).strip()) for name in NOTE_FIELDS]
        return [(label, value) for label, value in pairs if value]

    def excerpt(self, length: int = 120) -> str:
        """The prompt on one line, at most `length` characters, cut at a word boundary."""
        text = " ".join(self.prompt.split())
        if len(text) <= length:
            return text
        cut = text[: length - 1]
        # Back up to the last space unless that throws most of it away (one very long "word": a URL).
        if " " in cut and cut.rfind(" ") >= length // 2:
            cut = cut[: cut.rfind(" ")]
        return cut.rstrip(" ,;:.-") + "…"

    def _image_prompt(self) -> str | None:
        if hasattr(self, "image_prompt"):  # SceneQuerySet.with_image_prompt()
            return self.image_prompt
        versions = self.versions.filter(image=self.image.name).order_by("-number")
        return versions.values_list("prompt", flat=True).first()

    def image_is_stale(self) -> bool:
        """The current image was generated from another prompt than the scene has now: an edit since."""
        return bool(self.image) and self.prompt_changed_since(self._image_prompt(), self.prompt)

    @staticmethod
    def prompt_changed_since(made_from: str | None, prompt: str) -> bool:
        """The rule of image_is_stale for callers that read rows, not scenes (the export). An image no
        version records the prompt of (one from before versions) is never called stale."""
        return made_from is not None and made_from.strip() != prompt.strip()

    def failure_is_stale(self) -> bool:
        """The scene's last attempt failed, but for a prompt that has been edited since. Unknown (no
        error_prompt: a failure not recorded by mark_failed) is not stale; an empty prompt never fails."""
        failed_for = self.error_prompt.strip()
        return self.status == self.Status.FAILED and bool(failed_for) and failed_for != self.prompt.strip()


class SceneSeedLock(models.Model):
    """A scene's pinned seed: regenerating keeps the composition where the provider honours seeds.

    A row of its own, not a Scene column: every Scene column shrinks SQLite's bulk-insert batch (999
    parameters), and story imports keep a constant query count only while a batch holds 80 scenes."""

    scene = models.OneToOneField(Scene, models.CASCADE, related_name="seed_lock", primary_key=True)
    seed = models.BigIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.scene}: seed {self.seed}"
