from __future__ import annotations

from tests.generation.conftest import FAST, simulated, start, story  # noqa: F401  (shared fixtures)
