"""A project's own provider keys, so teams sharing the studio spend (and are limited on) their own quota.

Registered under the `generation` app (imported by generation/models.py), so they share its migrations.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from generation.credentials.vault import seal, unseal
from projects.models import Project

# The providers a project may bring its own key for, with what the key is called there. Self-hosted
# servers (ComfyUI, A1111) belong to the studio's operator and stay in its environment.
KEYED_PROVIDERS = {"openai": "OpenAI API key", "gemini": "Gemini API key", "fake": "Fake provider key"}
HINT_LENGTH = 4


class ProviderKey(models.Model):
    """One provider's key for one project: stored sealed, shown only by its last characters."""

    project = models.ForeignKey(Project, models.CASCADE, related_name="provider_keys")
    provider = models.CharField(max_length=40)
    sealed = models.TextField(help_text="The key, encrypted (see generation/credentials/vault.py)")
    hint = models.CharField(max_length=HINT_LENGTH, help_text="The key's last characters, for people")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider"]
        constraints = [
            models.UniqueConstraint(fields=["project", "provider"], name="one_key_per_project_provider")
        ]

    def __str__(self) -> str:
        return f"{self.provider} key …{self.hint} of {self.project}"

    @staticmethod
    def sealing(secret: str) -> dict[str, str]:
        """The fields that store `secret`: sealed, and its last characters for people."""
        return {"sealed": seal(secret), "hint": secret[-HINT_LENGTH:]}

    def secret(self) -> str:
        """The key itself; KeyUnreadable when the studio's secrets changed since it was stored."""
        return unseal(self.sealed)

    @property
    def label(self) -> str:
        return KEYED_PROVIDERS.get(self.provider, self.provider)
