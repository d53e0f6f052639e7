"""Storyboard notes of a scene: their names, labels and limits. Pure Python (the importers use it)."""

from __future__ import annotations

NOTE_FIELDS = ("shot", "camera", "duration", "dialogue")
NOTE_LABELS = {"shot": "Shot", "camera": "Camera", "duration": "Duration", "dialogue": "Dialogue"}
NOTE_MAX_LENGTH = {"shot": 100, "camera": 100, "duration": 20, "dialogue": 2000}
