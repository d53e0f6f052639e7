"""Run, project and scene ids on every generation log line, from context variables.

asyncio copies the context into each task it creates, so ids bound at the start of a run reach every
task of its scheduler, and a scene id bound in a job's task stays with that job's lines."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

_fields: ContextVar[dict[str, Any] | None] = ContextVar("log_fields", default=None)


def bind_log_context(**fields: Any) -> None:
    """Add fields to every log record of the current task (and of the tasks it starts from now on)."""
    _fields.set({**(_fields.get() or {}), **fields})


class RunContext(logging.Filter):
    """Puts the bound fields on each record, where a JSON formatter prints them as keys."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_fields.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True
