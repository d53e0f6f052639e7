from __future__ import annotations

from django.contrib import admin, messages

from projects.admin import MemberScopedAdmin, ReadOnlyInline
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, Endpoint


@admin.register(Endpoint)
class EndpointAdmin(MemberScopedAdmin):
    list_display = ["url", "project", "active", "created"]
    list_filter = ["active"]
    search_fields = ["url", "project__title"]


class AttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ["number", "status_code", "response_ms", "error", "created"]
    show_change_link = False


@admin.register(Delivery)
class DeliveryAdmin(MemberScopedAdmin):
    membership_path = "endpoint__project__memberships__user"
    list_display = [
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_response_ms",
        "created",
    ]
    list_filter = ["status", "event"]
    search_fields = ["endpoint__url", "event_id"]
    inlines = [AttemptInline]
    actions = ["redeliver"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Redeliver selected deliveries")
    def redeliver(self, request, queryset) -> None:
        for delivery in queryset.select_related("endpoint"):
            services.delivery_redeliver(delivery=delivery)
        messages.success(request, f"Queued {queryset.count()} deliveries again.")
