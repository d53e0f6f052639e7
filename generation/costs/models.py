"""What images cost, what each credential has shown, and what a project or a person may spend.

Registered under the `generation` app (imported by generation/models.py), so they share its migrations.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from projects.models import Project

MONEY = {"max_digits": 12, "decimal_places": 6}


class Price(models.Model):
    """A provider's published price for one model (and size/quality where the price depends on them).

    `per_image` None means unpriced, which is not free: costs then show as "unpriced", never $0.
    Token prices (per million tokens) win over `per_image` when the response carries usage."""

    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=100, blank=True, help_text="Blank: any model of the provider")
    size = models.CharField(max_length=20, blank=True, help_text="Blank: any size")
    quality = models.CharField(max_length=20, blank=True, help_text="Blank: any quality")
    per_image = models.DecimalField(**MONEY, null=True, blank=True, help_text="USD; blank = unpriced")
    input_per_million = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="USD per 1M input tokens"
    )
    output_per_million = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="USD per 1M output tokens"
    )
    batch_discount = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.5"), help_text="Batch price = price x this"
    )
    effective = models.DateField(help_text="The date the provider published this price")
    source = models.URLField(blank=True)

    class Meta:
        app_label = "generation"
        ordering = ["provider", "model", "size", "quality", "-effective"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "size", "quality", "effective"], name="unique_price"
            )
        ]

    def __str__(self) -> str:
        what = " ".join(filter(None, [self.provider, self.model, self.size, self.quality]))
        amount = "unpriced" if self.per_image is None else f"${self.per_image}"
        return f"{what}: {amount} (from {self.effective})"

    def specificity(self) -> int:
        return sum(bool(part) for part in (self.model, self.size, self.quality))

    def image_cost(self, *, usage: dict | None = None, batch: bool = False) -> Decimal | None:
        """One image's cost: from the response's token usage when it has some and tokens are priced,
        else the per-image price; None when unpriced."""
        cost = self._usage_cost(usage) if usage else None
        if cost is None:
            cost = self.per_image
        if cost is None:
            return None
        return cost * self.batch_discount if batch else cost

    def _usage_cost(self, usage: dict) -> Decimal | None:
        if self.output_per_million is None:
            return None
        tokens_in = usage.get("input_tokens", usage.get("promptTokenCount", 0)) or 0
        tokens_out = usage.get("output_tokens", usage.get("candidatesTokenCount", 0)) or 0
        if not tokens_out:
            return None
        million = Decimal(1_000_000)
        cost = Decimal(int(tokens_out)) * self.output_per_million / million
        if self.input_per_million is not None:
            cost += Decimal(int(tokens_in)) * self.input_per_million / million
        return cost


class LearnedProfile(models.Model):
    """What runs learned about one credential (engine CredentialProfile), keyed by a hash of the
    credential's id, never the secret; plus its observed retry rate for estimates."""

    provider = models.CharField(max_length=40)
    credential_hash = models.CharField(max_length=64)
    values = models.JSONField(default=dict)
    jobs = models.PositiveIntegerField(default=0, help_text="Items that ended (succeeded or failed)")
    requests = models.PositiveIntegerField(default=0, help_text="Requests those items took")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "generation"
        constraints = [
            models.UniqueConstraint(fields=["provider", "credential_hash"], name="unique_learned_profile")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.credential_hash[:8]}"

    def retry_rate(self) -> float:
        """Extra requests per item this credential has needed (retries and quota refusals)."""
        if not self.jobs:
            return 0.0
        return max(0.0, self.requests / self.jobs - 1)


class Budget(models.Model):
    """A cap on spending: a project's total, or a person's per calendar month (exactly one of them)."""

    project = models.OneToOneField(Project, models.CASCADE, null=True, blank=True, related_name="budget")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, null=True, blank=True, related_name="budget"
    )
    amount = models.DecimalField(max_digits=10, decimal_places=2, help_text="USD (per month for a person)")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "generation"
        constraints = [
            models.CheckConstraint(
                condition=Q(project__isnull=False, user__isnull=True)
                | Q(project__isnull=True, user__isnull=False),
                name="budget_project_xor_user",
            )
        ]

    def __str__(self) -> str:
        owner = f"project {self.project}" if self.project_id else f"{self.user} per month"
        return f"Budget of {owner}: ${self.amount}"
