from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from projects.models import Character, Membership, Project, Scene


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["title", "created_by", "provider", "created", "updated"]
    search_fields = ["title", "description"]
    inlines = [MembershipInline]


@admin.register(Scene)
class SceneAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "status", "excerpt", "updated"]
    list_filter = ["status", "project"]
    search_fields = ["prompt", "title"]
    list_select_related = ["project"]
    filter_horizontal = ["characters"]
    readonly_fields = ["created", "updated"]


@admin.register(Character)
class CharacterAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "reference_preview", "updated"]
    list_filter = ["project"]
    search_fields = ["name", "aliases"]
    readonly_fields = ["reference_preview", "created", "updated"]

    @admin.display(description="Reference")
    def reference_preview(self, character: Character) -> str:
        if not character.reference:
            return "—"
        url = reverse("character_reference", args=[character.project_id, character.pk])
        return format_html('<img src="{}?thumb=1" alt="" style="height:64px;border-radius:6px">', url)
