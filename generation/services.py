"""The public face of generation's workflows: other apps (projects, its views and admin) import these.

The workflows live in generation/runs/services.py; names here are the ones other apps may rely on.
"""

from __future__ import annotations

from generation.runs.selectors import missing_references  # a read: kept here for projects/views.py
from generation.runs.services import (
    RunRefused,
    character_run_start,
    perform_action,
    run_start,
    run_stop,
    scene_version_make_current,
)
from generation.runs.variations import scene_seed_lock, scene_version_import

__all__ = [
    "RunRefused",
    "character_run_start",
    "missing_references",
    "perform_action",
    "run_start",
    "run_stop",
    "scene_seed_lock",
    "scene_version_import",
    "scene_version_make_current",
]
