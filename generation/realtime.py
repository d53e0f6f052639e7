"""Kept for generation/consumers.py and routing.py until they move to generation/live/ (after the security merge)."""

from generation.live.events import WORKER_CHANNEL, project_group  # noqa: F401
