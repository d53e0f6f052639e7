"""Orphan media clean-up: generated images on disk that no row points to (`manage.py cleanup_media`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from django.conf import settings

from generation.models import SceneVersion
from projects.images import thumbnail_path
from projects.models import Character, CharacterReference, Scene

logger = logging.getLogger("generation.services")

# Older than this, a generated image no row points to is an orphan: the worker that stored it died before
# the row committed (rows commit milliseconds after the file is written).
ORPHAN_GRACE_SECONDS = 3600.0
GENERATED_DIRS = ("scenes", "characters")


def orphan_media_delete(
    *,
    grace_seconds: float = ORPHAN_GRACE_SECONDS,
    dry_run: bool = False,
    project_id: int | None = None,
    newer_than: float | None = None,
) -> list[str]:
    """Delete generated images under MEDIA_ROOT/projects/*/scenes|characters that no scene, scene version,
    character or further reference view points to, once older than `grace_seconds`; returns their names.

    `project_id` and `newer_than` (epoch seconds) narrow it to one project's files written since then."""
    root = Path(settings.MEDIA_ROOT)
    cutoff = time.time() - grace_seconds
    project = "*" if project_id is None else str(int(project_id))
    candidates = {
        path.relative_to(root).as_posix(): path
        for kind in GENERATED_DIRS
        for path in root.glob(f"projects/{project}/{kind}/*")
        if path.is_file() and (newer_than or 0) <= path.stat().st_mtime < cutoff
    }
    if not candidates:
        return []
    # Listed before the rows are read: a file older than the grace period has its row committed by now.
    referenced = {
        *Scene.objects.exclude(image="").values_list("image", flat=True),
        *SceneVersion.objects.values_list("image", flat=True),
        *Character.objects.exclude(reference="").values_list("reference", flat=True),
        *CharacterReference.objects.values_list("image", flat=True),
    }
    orphans = sorted(name for name in candidates if name not in referenced)
    if not dry_run:
        for name in orphans:
            candidates[name].unlink(missing_ok=True)
            thumbnail_path(candidates[name]).unlink(missing_ok=True)
        if orphans:
            logger.info("Deleted %d orphan image(s) under %s", len(orphans), root)
    return orphans
