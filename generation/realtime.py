"""Kept for generation/consumers.py and routing.py until they move into generation/live/."""

from generation.live.events import WORKER_CHANNEL, project_group  # noqa: F401
