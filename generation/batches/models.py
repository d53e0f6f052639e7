"""A provider batch a run submitted: its id is stored before anyone polls it, so a restarted or another
worker resumes polling instead of submitting (and paying for) it again."""

from __future__ import annotations

from django.db import models


class ProviderBatch(models.Model):
    class State(models.TextChoices):
        SUBMITTING = "submitting", "Submitting"  # the row exists before the provider's batch does
        POLLING = "polling", "Polling"
        DONE = "done", "Results read"

    run = models.ForeignKey("generation.BatchRun", models.CASCADE, related_name="provider_batches")
    provider_id = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.SUBMITTING)
    provider_status = models.CharField(max_length=40, blank=True)
    # custom_id -> the scene id it generates
    items = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "generation"
        ordering = ["created"]

    def __str__(self) -> str:
        return f"Batch {self.provider_id or '(submitting)'} of run {self.run_id}"
