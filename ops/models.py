from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """A worker process says it is alive on every scan (about every 5 s): /readyz and /metrics read it."""

    worker = models.CharField(max_length=100, unique=True)
    seen = models.DateTimeField()
    runs = models.PositiveIntegerField(default=0, help_text="Runs it was executing when last seen")
    started = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-seen"]

    def __str__(self) -> str:
        return self.worker
