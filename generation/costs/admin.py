"""The price table is edited here (new published prices: add a row with its date); budgets too.
Learned profiles are a record, read-only."""

from __future__ import annotations

from django.contrib import admin

from generation.costs.models import Budget, LearnedProfile, Price


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ["provider", "model", "size", "quality", "shown_price", "batch_discount", "effective"]
    list_filter = ["provider"]
    search_fields = ["model"]

    @admin.display(description="Per image")
    def shown_price(self, price: Price) -> str:
        return "unpriced" if price.per_image is None else f"${price.per_image}"


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "user", "amount", "updated"]


@admin.register(LearnedProfile)
class LearnedProfileAdmin(admin.ModelAdmin):
    list_display = ["provider", "credential_hash", "jobs", "requests", "updated"]
    readonly_fields = ["provider", "credential_hash", "values", "jobs", "requests", "updated"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
