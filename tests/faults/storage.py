"""A media storage that fails on demand, as a full or read-only disk does (for machines where the tests
cannot mount a small tmpfs)."""

from __future__ import annotations

import errno
import os

from django.core.files.storage import FileSystemStorage


class Faults:
    """After `saves_left` more saves, every save fails with `errno`, leaving a partial file as a real
    full disk does."""

    saves_left: int | None = None
    errno: int = errno.ENOSPC


class FailingStorage(FileSystemStorage):
    def _save(self, name, content):
        if Faults.saves_left is not None:
            if Faults.saves_left <= 0:
                path = self.path(name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "wb").close()  # what a write cut short by ENOSPC leaves behind
                raise OSError(Faults.errno, os.strerror(Faults.errno))
            Faults.saves_left -= 1
        return super()._save(name, content)
