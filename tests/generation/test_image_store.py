"""image_save on the media folder: a new file holding the whole image, or no file at all."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from django.conf import settings

from generation.engine.hooks import StoreError
from generation.runs import storage
from generation.runs.storage import image_save

IMAGE = bytes(range(256)) * 40


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


def test_an_image_is_stored_whole_in_a_folder_made_for_it(media):
    assert image_save("projects/7/scenes/a.png", IMAGE) == "projects/7/scenes/a.png"
    path = media / "projects/7/scenes/a.png"
    assert path.read_bytes() == IMAGE
    assert stat.S_IMODE(path.stat().st_mode) == settings.FILE_UPLOAD_PERMISSIONS & ~_umask()


def test_a_write_cut_short_by_a_full_disk_leaves_no_file(media, monkeypatch):
    written = []
    real_write = os.write

    def write(fd, data):
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(real_write(fd, data[:100]))  # a short write first, as a filling disk gives
        return written[-1]

    monkeypatch.setattr(storage.os, "write", write)
    with pytest.raises(StoreError, match="disk full") as caught:
        image_save("projects/7/scenes/b.png", IMAGE)
    assert caught.value.fatal
    assert written == [100]
    assert not (media / "projects/7/scenes/b.png").exists()


def test_an_existing_file_is_never_overwritten(media):
    path = media / "projects/7/scenes/c.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"someone else's")
    with pytest.raises(StoreError) as caught:
        image_save("projects/7/scenes/c.png", IMAGE)
    assert not caught.value.fatal
    assert path.read_bytes() == b"someone else's"


def test_a_name_outside_the_media_folder_is_refused(media):
    from django.core.exceptions import SuspiciousFileOperation

    with pytest.raises(SuspiciousFileOperation):
        image_save("../escape.png", IMAGE)
    assert not (media.parent / "escape.png").exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
