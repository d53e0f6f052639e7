"""Workflows of the API: personal access tokens, rate limits, and the few run workflows the pages do not
have as one call (resume a run). Everything else calls the projects and generation services."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from api.models import AccessToken
from generation.models import BatchRun
from generation.services import run_start
from projects.models import Membership, Project

# last_used is written at most this often per token, so a busy script does not write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_create(
    *, user, name: str, read_only: bool = False, projects: Sequence[Project] = ()
) -> tuple[AccessToken, str]:
    """A new token and its raw value, which is never stored and so can be shown only now."""
    raw = AccessToken.PREFIX + secrets.token_urlsafe(32)
    allowed = Membership.objects.filter(user=user, project__in=projects).values_list("project_id", flat=True)
    with transaction.atomic():
        token = AccessToken.objects.create(
            user=user, name=name, digest=AccessToken.digest_of(raw), hint=raw[:10], read_only=read_only
        )
        token.projects.set(list(allowed))
    return token, raw


def token_revoke(*, token: AccessToken) -> None:
    AccessToken.objects.filter(pk=token.pk, revoked__isnull=True).update(revoked=timezone.now())


def token_authenticate(*, raw: str) -> AccessToken | None:
    """The live token with this raw value, or None (unknown, revoked, or its user deactivated)."""
    if not raw.startswith(AccessToken.PREFIX):
        return None
    token = (
        AccessToken.objects.select_related("user")
        .filter(digest=AccessToken.digest_of(raw), revoked__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used is None or now - token.last_used > LAST_USED_RESOLUTION:
        AccessToken.objects.filter(pk=token.pk).update(last_used=now)
    return token


def rate_limit_wait(*, key: str, limit: int | None = None, window: int = 60) -> int | None:
    """Count one request against `key`'s fixed window; the seconds to wait when over the limit, else None.

    In the Django cache: one process's local memory by default, the shared cache when one is configured."""
    limit = settings.API_RATE_LIMIT_PER_MINUTE if limit is None else limit
    now = time.time()
    bucket = f"api-rate:{key}:{int(now // window)}"
    cache.add(bucket, 0, timeout=window + 1)
    try:
        count = cache.incr(bucket)
    except ValueError:  # expired between add and incr
        cache.set(bucket, 1, timeout=window + 1)
        count = 1
    if count > limit:
        return int(window - now % window) + 1
    return None


def run_resume(*, run: BatchRun, user) -> tuple[BatchRun, bool]:
    """Start a run over the scenes of an ended run; those already generated are skipped, so it generates
    exactly what the first one left (the page's "Generate all" after a stop does the same for all scenes)."""
    if run.kind == BatchRun.Kind.CHARACTERS:
        from generation.services import character_run_start

        return character_run_start(project=run.project, user=user)
    scene_ids = list(run.scenes.values_list("pk", flat=True))
    return run_start(project=run.project, user=user, scene_ids=scene_ids)
