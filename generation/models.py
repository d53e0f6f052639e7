from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from projects.models import Character, Project, Scene
from projects.wording import all_of, count_noun, listing, plural, were

# BatchRun.ACTIVE as plain strings, for the constraint and the index (their migrations copy them).
ACTIVE_STATUSES = ["queued", "running", "waiting_quota", "stopping", "waiting_daily_quota"]


class BatchRun(models.Model):
    class Kind(models.TextChoices):
        SCENES = "scenes", "Scenes"
        CHARACTERS = "characters", "Character references"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        WAITING_QUOTA = "waiting_quota", "Waiting for quota"
        # Parked on a spent per-day quota until quota_resume_at; a worker's scan resumes it then.
        WAITING_DAILY_QUOTA = "waiting_daily_quota", "Waiting for the daily quota"
        STOPPING = "stopping", "Stopping"
        STOPPED = "stopped", "Stopped"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    ACTIVE = (
        Status.QUEUED,
        Status.RUNNING,
        Status.WAITING_QUOTA,
        Status.STOPPING,
        Status.WAITING_DAILY_QUOTA,
    )
    # A worker renews its lease (heartbeat) every 0.5 s; another may take the run over once it is this old.
    # The holder gives the run up itself after half of it without a renewal (RunExecution._watch), so it
    # has stopped sending before anyone else can start.
    LEASE_SECONDS = 15

    project = models.ForeignKey(Project, models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.SCENES)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=100, blank=True)
    regenerate = models.BooleanField(default=False)
    # Images asked per scene (variations to choose from); each one is a request against the quota.
    candidates = models.PositiveSmallIntegerField(default=1)

    class Mode(models.TextChoices):
        SYNC = "sync", "One request per scene"
        BATCH = "batch", "Provider batch (half price, within 24 h)"

    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.SYNC)
    scenes = models.ManyToManyField(Scene, blank=True, related_name="runs")
    characters = models.ManyToManyField(Character, blank=True, related_name="runs")
    config = models.JSONField(default=dict, help_text="Engine settings used by this run")
    total = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    # Scenes deleted while the run had them (a delete or a replace-import): neither generated nor failed.
    removed = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    quota_errors = models.PositiveIntegerField(default=0)
    # The vocabulary of docs/events.md: quota waits (count and seconds, the current wait's elapsed part
    # included) and pacing seconds (the run holding itself to the quota, no error).
    quota_wait_seconds = models.FloatField(default=0)
    # Spent, in USD, over every billed attempt; `unpriced` counts billed attempts no price covered.
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    unpriced = models.PositiveIntegerField(default=0)
    quota_waits = models.PositiveIntegerField(default=0)
    pacing_seconds = models.FloatField(default=0)
    reason = models.TextField(blank=True)
    summary = models.CharField(max_length=200, blank=True)
    # While the run waits for quota: when dispatch resumes, so a page loaded mid-wait can count down.
    quota_resume_at = models.DateTimeField(null=True, blank=True)
    # While the run paces itself: when the next request may go, and the pace (for the same banner).
    pacing_until = models.DateTimeField(null=True, blank=True)
    requests_per_minute = models.FloatField(null=True, blank=True)
    # When the counts were taken (the wait seconds grow from there) and when the run should end.
    counts_at = models.DateTimeField(null=True, blank=True)
    eta_at = models.DateTimeField(null=True, blank=True)
    stop_requested = models.BooleanField(default=False)
    # Which worker holds the run and when it last said so: a stale heartbeat lets another worker take over.
    owner = models.CharField(max_length=100, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            # The database, not a check-then-act in Python, guarantees one active run per project.
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status__in=ACTIVE_STATUSES),
                name="one_active_run_per_project",
            )
        ]
        indexes = [
            models.Index(
                fields=["status", "heartbeat"],
                name="active_run_poll",
                condition=Q(status__in=ACTIVE_STATUSES),
            )
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.get_kind_display()}) of {self.project}"

    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    def noun(self, count: int) -> str:
        word = "scene" if self.kind == self.Kind.SCENES else "character reference"
        return plural(count, word)

    def _word(self) -> str:
        return "scene" if self.kind == self.Kind.SCENES else "character reference"

    def summary_message(self, *, totals: dict[str, int] | None = None) -> str:
        """The one-line outcome shown in the snackbar, in the product owner's three shapes. A resume (a run
        after earlier ones, given the project's `totals` from generation.selectors.project_totals) says
        instead what it generated and what the project has now."""
        attempted = self.total - self.skipped - self.removed
        word = self._word()
        if totals and self.succeeded and totals["images"] > self.succeeded and not self.regenerate:
            return self._resume_summary(attempted, totals)
        if self.total and self.skipped == self.total:
            return f"Nothing to generate: {all_of(self.total, word)} {were(self.total)} skipped"
        if self.total and self.succeeded == self.total:
            return f"Successfully generated {all_of(self.total, word)}!"
        if attempted and self.succeeded == 0 and self.failed == attempted:
            return self._all_failed(attempted)
        extras = [f"{self.failed} failed"] if self.failed else []
        if self.skipped:
            extras.append(f"{self.skipped} skipped")
        if self.removed:
            extras.append(f"{self.removed} removed during the run")
        not_done = self.total - self.succeeded - self.failed - self.skipped - self.removed
        if not_done:
            extras.append(f"{not_done} not attempted")
        tail = f" ({', '.join(extras)})" if extras else ""
        return f"Generated {self.succeeded} of {count_noun(self.total, word)}{tail}"

    def refused_positions(self) -> list[int]:
        """Story positions of this run's scenes the provider refused for safety: trying again won't help."""
        if self.pk is None or self.kind != self.Kind.SCENES:
            return []
        refused = self.attempts.filter(status=GenerationAttempt.Status.FAILED, error_kind="safety")
        positions = refused.exclude(scene=None).values_list("scene__position", flat=True)
        return sorted(set(positions))

    def _all_failed(self, attempted: int) -> str:
        refused = self.refused_positions()
        if not refused:
            return f"Error: {all_of(attempted, self._word())} failed to generate. Please try again."
        scenes = f"{plural(len(refused), 'scene')} {listing(refused)}"
        if len(refused) >= attempted:
            return (
                f"Error: the provider refused the {plural(len(refused), 'prompt')} of {scenes} "
                f"under its content policy. Reword {'it' if len(refused) == 1 else 'them'} "
                "(Edit the scene), then Retry."
            )
        return (
            f"Error: {all_of(attempted, self._word())} failed to generate; the provider refused {scenes} "
            "under its content policy (reword those prompts). Retry the others."
        )

    def _resume_summary(self, attempted: int, totals: dict[str, int]) -> str:
        # Every scene it tried ended (generated or failed): it generated "the" missing ones it could.
        missing = f"missing {self.noun(attempted)}"
        if self.succeeded + self.failed == attempted:
            done = f"the {self.succeeded} missing {self.noun(self.succeeded)}"
        else:
            done = f"{self.succeeded} of the {attempted} {missing}"
        images, scenes = totals["images"], totals["scenes"]
        if images == scenes:
            now = f"all {scenes} now have images"
        else:
            now = f"{images} of {scenes} now {'has an image' if images == 1 else 'have images'}"
        failed = f", {totals['failed']} failed" if totals["failed"] else ""
        return f"Generated {done}; {now}{failed}"

    def duration_seconds(self) -> float | None:
        if not self.started:
            return None
        return ((self.finished or timezone.now()) - self.started).total_seconds()


class GenerationAttempt(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        INTERRUPTED = "interrupted", "Interrupted"

    run = models.ForeignKey(BatchRun, models.CASCADE, related_name="attempts")
    scene = models.ForeignKey(Scene, models.SET_NULL, null=True, blank=True, related_name="attempts")
    character = models.ForeignKey(Character, models.SET_NULL, null=True, blank=True, related_name="attempts")
    number = models.PositiveIntegerField(help_text="1 for the first request of this item in the run")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    error_kind = models.CharField(max_length=20, blank=True)
    error_message = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=100, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    prompt = models.TextField(blank=True, help_text="The prompt as it was sent, style included")
    negative_prompt = models.TextField(blank=True)
    reference_hashes = models.JSONField(default=list, blank=True, help_text="sha256 of each reference sent")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # What the provider bills for this attempt: None when it billed nothing (a quota refusal, a 5xx) or
    # no price covers it (then `unpriced`).
    cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    unpriced = models.BooleanField(default=False)
    retry_of = models.ForeignKey("self", models.SET_NULL, null=True, blank=True, related_name="retries")
    started = models.DateTimeField()
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started", "pk"]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        target = f"scene {self.scene_id}" if self.scene_id else f"character {self.character_id}"
        return f"Attempt {self.number} of {target} ({self.status})"


class SceneVersion(models.Model):
    """One generated image of a scene. The scene's current image is one of these; none is ever deleted."""

    scene = models.ForeignKey(Scene, models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    image = models.ImageField(upload_to="projects/versions/", max_length=255)
    attempt = models.ForeignKey(
        GenerationAttempt, models.SET_NULL, null=True, blank=True, related_name="versions"
    )
    provider = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=100, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    prompt = models.TextField(blank=True, help_text="The prompt as it was sent")
    scene_prompt = models.TextField(blank=True, help_text="The scene's own prompt, before the style")
    style = models.JSONField(default=dict, blank=True, help_text="The project style applied")
    negative_prompt = models.TextField(blank=True)
    reference_hashes = models.JSONField(default=list, blank=True, help_text="sha256 of each reference sent")
    candidate = models.PositiveSmallIntegerField(default=1, help_text="Which of the run's variations")
    attempts = models.PositiveIntegerField(default=1, help_text="Requests the run sent to get this image")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["scene", "-number"]
        constraints = [models.UniqueConstraint(fields=["scene", "number"], name="unique_scene_version")]

    def __str__(self) -> str:
        return f"{self.scene} v{self.number}"

    def is_current(self) -> bool:
        return self.image.name == self.scene.image.name


# Registered under this app: prices, learned credential profiles, budgets and projects' provider keys.
from generation.batches.models import ProviderBatch  # noqa: E402
from generation.costs.models import Budget, LearnedProfile, Price  # noqa: E402
from generation.credentials.models import ProviderKey  # noqa: E402

__all__ = [
    "BatchRun",
    "Budget",
    "GenerationAttempt",
    "LearnedProfile",
    "Price",
    "ProviderBatch",
    "ProviderKey",
    "SceneVersion",
]
