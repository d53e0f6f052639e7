"""Fixtures of the fault suite: the generation tests' run starter, and real servers for those that need
them (PostgreSQL, Redis, a tmpfs), which fail rather than skip under CI."""

from __future__ import annotations

from tests.generation.conftest import start

__all__ = ["start"]
