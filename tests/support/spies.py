"""Spies on Pillow's image methods: which formats a check verified or decoded."""

from __future__ import annotations

import pytest


def formats_called(monkeypatch: pytest.MonkeyPatch, cls: type, method: str) -> list[str]:
    """The format of every image `cls.method` is called on from now; the method still runs."""
    calls: list[str] = []
    real = getattr(cls, method)

    def counted(self, *args, **kwargs):
        calls.append(self.format)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, counted)
    return calls
