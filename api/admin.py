from __future__ import annotations

from django.contrib import admin

from api.models import AccessToken


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "hint", "read_only", "created", "last_used", "revoked"]
    list_filter = ["read_only"]
    search_fields = ["name", "user__username"]
    # The digest is useless to a person and the raw token is never stored: nothing here is editable.
    readonly_fields = ["user", "name", "hint", "digest", "read_only", "projects", "created", "last_used"]

    def has_add_permission(self, request) -> bool:
        # A token made here could never be shown to its user: they create their own on the tokens page.
        return False
