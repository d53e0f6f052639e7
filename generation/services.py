"""The public face of generation's workflows: other apps (projects, its views and admin) import these.

The workflows live in generation/runs/ (services.py, actions.py, versions.py); names here are the ones
other apps may rely on.
"""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from django.db import transaction

from generation.credentials.services import provider_key_remove, provider_key_set
from generation.live.events import scenes_changed
from generation.runs.actions import perform_action
from generation.runs.selectors import missing_references  # a read: kept here for projects/views.py
from generation.runs.services import (
    RunRefused,
    character_run_start,
    run_force_stop,
    run_lease_lapsed,
    run_start,
    run_stop,
)
from generation.runs.variations import scene_seed_lock, scene_version_import
from generation.runs.versions import scene_version_make_current


def project_changed_notify(*, project_id: int) -> None:
    """Tell every open page of the project that its scenes changed (created, edited, deleted, moved,
    imported, linked to characters, a reference changed), once the caller's transaction commits."""
    # Robust: a lost notice costs a page a refresh at most; it must never fail the edit that committed.
    transaction.on_commit(lambda: _send_scenes_changed(project_id), robust=True)


_sending: set[asyncio.Task] = set()  # held until sent: the loop keeps only weak references to tasks


def _send_scenes_changed(project_id: int) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # a view's or a command's thread: the usual case
        async_to_sync(scenes_changed)(project_id)
    else:
        _sending.add(task := loop.create_task(scenes_changed(project_id)))
        task.add_done_callback(_sending.discard)


__all__ = [
    "RunRefused",
    "character_run_start",
    "missing_references",
    "perform_action",
    "project_changed_notify",
    "provider_key_remove",
    "provider_key_set",
    "run_force_stop",
    "run_lease_lapsed",
    "run_start",
    "run_stop",
    "scene_seed_lock",
    "scene_version_import",
    "scene_version_make_current",
]
