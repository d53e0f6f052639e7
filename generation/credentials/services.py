"""Workflows for a project's own provider keys: set one, remove one, read one for a run."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError

from generation.credentials.models import KEYED_PROVIDERS, ProviderKey
from projects.models import Project

logger = logging.getLogger("generation.credentials")

SECRET_MIN, SECRET_MAX = 8, 400


def provider_key_set(*, project: Project, provider: str, secret: str, user) -> ProviderKey:
    """Store (or replace) the project's key for `provider`. ValidationError names the field at fault."""
    if provider not in KEYED_PROVIDERS:
        choices = ", ".join(KEYED_PROVIDERS)
        raise ValidationError(f"“{provider}” takes no key here; choose one of {choices}.", code="provider")
    key, _ = ProviderKey.objects.update_or_create(
        project=project,
        provider=provider,
        defaults={**ProviderKey.sealing(_clean(secret)), "created_by": user},
    )
    logger.info("Project %s: %s key …%s set by %s", project.pk, provider, key.hint, user)
    return key


def _clean(secret: str) -> str:
    secret = (secret or "").strip()
    if not SECRET_MIN <= len(secret) <= SECRET_MAX:
        raise ValidationError(
            f"A key is {SECRET_MIN} to {SECRET_MAX} characters; this one has {len(secret)}.", code="secret"
        )
    if not secret.isascii() or not secret.isprintable() or any(c.isspace() for c in secret):
        # It goes into an HTTP header as it is: a pasted line break or a stray character would not work.
        raise ValidationError("A key has no spaces, line breaks or non-ASCII characters.", code="secret")
    return secret


def provider_key_remove(*, project: Project, provider: str, user) -> bool:
    """Forget the project's key: its runs use the studio's own key again. False when there was none."""
    deleted, _ = ProviderKey.objects.filter(project=project, provider=provider).delete()
    if deleted:
        logger.info("Project %s: %s key removed by %s", project.pk, provider, user)
    return bool(deleted)


def project_api_key(*, project_id: int, provider: str) -> str:
    """The key the project's runs with `provider` send ("" for the studio's own); KeyUnreadable when
    it cannot be unsealed, which must stop a run rather than quietly bill the studio's key."""
    key = ProviderKey.objects.filter(project_id=project_id, provider=provider).first()
    return key.secret() if key is not None else ""
