from __future__ import annotations

from django.contrib import admin, messages

from generation.admin_actions import retry_scenes
from generation.costs import admin as costs_admin  # noqa: F401  (registers prices, budgets, profiles)
from generation.costs.prices import money
from generation.models import BatchRun, GenerationAttempt, SceneVersion
from projects.admin import MemberScopedAdmin, ReadOnlyInline, SceneAdmin
from projects.models import Scene
from projects.wording import count_noun


class ReadOnlyAdmin(MemberScopedAdmin):
    """Runs and attempts are a record of what happened: nobody edits history from the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.display(description="Cost")
def shown_cost(obj) -> str:
    """A run's total or an attempt's bill; unpriced is never shown as $0."""
    if isinstance(obj, GenerationAttempt):
        return "unpriced" if obj.unpriced else ("—" if obj.cost is None else money(obj.cost))
    return money(obj.cost, unpriced=obj.unpriced)


# What an attempt is, in the run's inline and in the attempts list alike.
ATTEMPT_COLUMNS = [
    "scene",
    "character",
    "number",
    "status",
    "error_kind",
    "http_status",
    "provider",
    "model",
    "latency_ms",
    shown_cost,
    "started",
]


class AttemptInline(ReadOnlyInline):
    model = GenerationAttempt
    fields = ATTEMPT_COLUMNS
    readonly_fields = [shown_cost]


@admin.register(BatchRun)
class BatchRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "project",
        "kind",
        "status",
        "provider",
        "total",
        "succeeded",
        "failed",
        "skipped",
        "requests",
        "quota_errors",
        shown_cost,
        "duration",
        "requested_by",
        "created",
    ]
    # Only the projects the user sees: the plain filter would list every project's title.
    list_filter = ["status", "kind", "provider", ("project", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["project", "requested_by"]
    search_fields = ["project__title", "reason"]
    inlines = [AttemptInline]

    @admin.display(description="Duration")
    def duration(self, run: BatchRun) -> str:
        seconds = run.duration_seconds()
        return "—" if seconds is None else f"{seconds:.1f} s"


@admin.register(GenerationAttempt)
class GenerationAttemptAdmin(ReadOnlyAdmin):
    project_path = "run__project"
    list_display = ["id", "run", *ATTEMPT_COLUMNS]
    readonly_fields = [shown_cost]
    list_filter = ["status", "error_kind", "provider", "http_status"]
    list_select_related = ["run", "scene", "character"]
    search_fields = ["error_message"]


@admin.register(SceneVersion)
class SceneVersionAdmin(ReadOnlyAdmin):
    project_path = "scene__project"
    list_display = ["scene", "number", "provider", "model", "seed", "attempts", "created"]
    list_filter = ["provider"]
    list_select_related = ["scene"]


class SceneAttemptInline(ReadOnlyInline):
    model = GenerationAttempt
    fk_name = "scene"
    fields = [
        "run",
        "number",
        "status",
        "error_kind",
        "error_message",
        "http_status",
        "provider",
        "latency_ms",
        "started",
    ]
    ordering = ["-started"]


# The scene admin is projects'; its attempts and the retry action are generation's, added here so that
# projects never imports generation's models or admin (the import contracts in pyproject.toml).
admin.site.unregister(Scene)


@admin.register(Scene)
class GeneratingSceneAdmin(SceneAdmin):
    inlines = [*SceneAdmin.inlines, SceneAttemptInline]
    actions = [*(SceneAdmin.actions or []), "retry_selected"]

    @admin.action(description="Retry selected scenes")
    def retry_selected(self, request, queryset) -> None:
        queued, refusals = retry_scenes(user=request.user, scenes=queryset.select_related("project"))
        if queued:
            self.message_user(
                request, f"Queued {count_noun(queued, 'scene')} for generation.", messages.SUCCESS
            )
        for reason in refusals:
            self.message_user(request, f"Not queued: {reason}", messages.WARNING)
