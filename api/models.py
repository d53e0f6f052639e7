from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models

from projects.models import Project


class AccessToken(models.Model):
    """A personal access token. Only its SHA-256 is stored: the raw token is shown once, at creation.

    A fast hash is enough (unlike passwords): the token is 256 random bits, so it cannot be guessed from
    its hash, and lookups must stay cheap because every API request makes one."""

    PREFIX = "sst_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="The token's first characters, to recognise it")
    read_only = models.BooleanField(default=False)
    projects = models.ManyToManyField(
        Project, blank=True, related_name="+", help_text="Empty: every project the user is a member of"
    )
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @staticmethod
    def digest_of(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    def is_active(self) -> bool:
        return self.revoked is None

    def project_ids(self) -> set[int] | None:
        """The projects this token may reach, or None for all of the user's."""
        if not hasattr(self, "_project_ids"):
            ids = set(self.projects.values_list("pk", flat=True))
            self._project_ids = ids or None
        return self._project_ids

    def allows_project(self, project_id: int) -> bool:
        ids = self.project_ids()
        return ids is None or project_id in ids
