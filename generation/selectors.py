"""The public face of generation's reads: what other apps (projects' pages) may ask about runs."""

from __future__ import annotations

from generation.runs.selectors import latest_run, project_snapshot, run_payload, scene_state

__all__ = ["latest_run", "project_snapshot", "run_payload", "scene_state"]
