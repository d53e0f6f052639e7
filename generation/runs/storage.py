"""Durable writes for a run: ORM writes retried across a dropped database connection, and images stored
whole or not at all."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, default_storage, storages
from django.db import InterfaceError, OperationalError, connection

from generation.engine.hooks import StoreError

logger = logging.getLogger("generation.recorder")

# A dropped connection or a database restarting is a blip: the write is retried on a new connection this
# long (about 4 s in all) before the item fails with the reason. Longer and the run's lease lapses.
DB_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)
DB_ERRORS = (OperationalError, InterfaceError)
# No later image can be kept either: the run stops rather than spend quota on images it would lose.
FATAL_STORE_ERRNOS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only media",
}

T = TypeVar("T")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


async def durably(what: str, write: Callable[..., T], *args: Any, run_id: int) -> T:
    """Run a short ORM write in the ORM's thread. A dropped connection (database restarting, network
    blip) is closed and the write retried on a new one; if it keeps failing, StoreError with why.

    Every write passed here is one transaction that re-checks its fence, so running it again after a
    failure cannot record anything twice."""
    for delay in (*DB_RETRY_DELAYS, None):
        try:
            return await database_sync_to_async(write)(*args)
        except DB_ERRORS as error:
            await database_sync_to_async(_close_connection)()
            if delay is None:
                raise StoreError(f"the database is unavailable: {_first_line(error)}") from error
            logger.warning("Run %s: %s failed (%s); retrying", run_id, what, _first_line(error))
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def skip_health_checks(*, connection: Any, **kwargs: Any) -> None:
    """A `connection_created` receiver for processes that only generate (`manage.py studioworker`).

    channels closes old connections around every ORM call a worker makes, which marks the health check
    undone, so with CONN_HEALTH_CHECKS each call paid a SELECT 1 round trip first: one per write. What the
    check is for, a connection the database dropped, the worker's writes handle themselves (durably()
    retries on a new one), and any other call that fails marks the connection, which Django then tests
    and replaces before the next."""
    connection.health_check_enabled = False


def image_save(name: str, data: bytes) -> str:
    """Store an image whole or not at all: a failed or short write leaves no file behind. Raises
    StoreError, fatal when the media cannot take any image any more (disk full, read-only)."""
    storage = storages["default"]
    try:
        if type(storage) is not FileSystemStorage:
            return _storage_save(storage, name, data)
        _file_create(storage, storage.path(name), data)
        return name
    except OSError as error:
        label = FATAL_STORE_ERRNOS.get(error.errno)
        raise StoreError(label or error.strerror or str(error), fatal=label is not None) from error


def _file_create(storage: FileSystemStorage, path: str, data: bytes) -> None:
    """A new file holding `data`, or none at all. Created exclusively: generated names are random, so an
    existing file is never one to overwrite. Three system calls where the storage API's save makes a
    dozen (exists twice, mkdir, lock, unlock, chmod, stat): about 0.2 ms of CPU less per image here."""
    # The storage's own modes (its OPTIONS, else FILE_UPLOAD_*_PERMISSIONS), as its save would use.
    mode = storage.file_permissions_mode or 0o644
    try:
        fd = os.open(path, _CREATE, mode)
    except FileNotFoundError:  # the project's first image: its folder comes first
        os.makedirs(os.path.dirname(path), storage.directory_permissions_mode or 0o777, exist_ok=True)
        fd = os.open(path, _CREATE, mode)
    try:
        try:
            rest = memoryview(data)
            while rest:
                rest = rest[os.write(fd, rest) :]
        finally:
            os.close(fd)  # once: the descriptor is gone even when close fails
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


def _storage_save(storage: Storage, name: str, data: bytes) -> str:
    """Through the storage API, for any other storage (tests put one in that fails on demand)."""
    name = storage.get_available_name(name)
    try:
        saved = storage.save(name, ContentFile(data))
        if storage.size(saved) != len(data):
            image_delete(saved)
            raise OSError(errno.EIO, "the stored image is incomplete")
    except OSError:
        image_delete(name)
        raise
    return saved


def image_delete(name: str) -> None:
    """Best effort: on a read-only or vanished media directory there is nothing left to undo."""
    with contextlib.suppress(OSError):
        default_storage.delete(name)


def _close_connection() -> None:
    # A connection that failed mid-use may be half-open: the next write must start on a fresh one.
    with contextlib.suppress(Exception):
        connection.close()


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
