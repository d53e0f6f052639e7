from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from generation.admin_actions import retry_scenes
from generation.models import GenerationAttempt
from projects.models import Character, Membership, Project, Scene


class MemberScopedAdmin(admin.ModelAdmin):
    """Staff who are not superusers see only the projects they belong to, as in the pages."""

    membership_path = "project__memberships__user"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{self.membership_path: request.user}).distinct()


class ReadOnlyInline(admin.TabularInline):
    """A record shown beside its parent: never added, changed or deleted from the admin."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return self.fields


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


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(MemberScopedAdmin):
    membership_path = "memberships__user"
    list_display = ["title", "created_by", "provider", "created", "updated"]
    search_fields = ["title", "description"]
    inlines = [MembershipInline]


@admin.register(Scene)
class SceneAdmin(MemberScopedAdmin):
    list_display = ["__str__", "project", "status", "excerpt", "updated"]
    list_filter = ["status", "project"]
    search_fields = ["prompt", "title"]
    list_select_related = ["project"]
    filter_horizontal = ["characters"]
    readonly_fields = ["created", "updated"]
    inlines = [SceneAttemptInline]
    actions = ["retry_selected"]

    @admin.action(description="Retry selected scenes")
    def retry_selected(self, request, queryset) -> None:
        queued, refusals = retry_scenes(user=request.user, scenes=queryset.select_related("project"))
        if queued:
            self.message_user(request, f"Queued {queued} scene(s) for generation.", messages.SUCCESS)
        for reason in refusals:
            self.message_user(request, f"Not queued: {reason}", messages.WARNING)


@admin.register(Character)
class CharacterAdmin(MemberScopedAdmin):
    list_display = ["name", "project", "reference_preview", "updated"]
    list_filter = ["project"]
    search_fields = ["name", "aliases"]
    readonly_fields = ["reference_preview", "created", "updated"]

    @admin.display(description="Reference")
    def reference_preview(self, character: Character) -> str:
        if not character.reference or character.pk is None:  # None: an add form shown again with errors
            return "—"
        url = reverse("character_reference", args=[character.project_id, character.pk])
        # A height attribute, not a style one: the site's CSP allows no inline style.
        return format_html('<img src="{}?thumb=1" alt="" height="64">', url)
