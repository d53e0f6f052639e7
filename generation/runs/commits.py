"""Group commit for a run's item writes: the writes that queue up while earlier ones are being written go to
the database together, in one transaction, as a database's own log does with its commits.

A run's writes all pass through one ORM thread, so when images arrive faster than it writes them, each
waits for the ones before it anyway. Written together they share what a transaction costs on its own (the
connection check, BEGIN and COMMIT, the fence on the run's row, the run's counts, the hop to the thread):
about half of a generated item's statements. An idle studio sees no difference: a write that finds
nothing being written goes at once, alone, as before.

The group is taken when the ORM's thread starts on it, not when it was asked for: that thread serves
every run of the process, so a run's write often waits behind other runs' work, and what the run asked
for meanwhile goes with it. The busier the thread, the larger the groups and the fewer the transactions.

A group that fails other than by the database being unavailable is written again one write at a time, so
one write's error is that write's alone. Plain asyncio (and a lock for the thread that takes a group):
what "together" and "alone" mean is the caller's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from generation.engine.hooks import StoreError

logger = logging.getLogger("generation.recorder")

MAX_GROUP = 64  # writes in one transaction: long enough to share its cost, short enough to hold locks


def _future() -> asyncio.Future:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class Write:
    """One write waiting for its turn: `write(*args)` runs in the ORM's thread; `key` names the item it
    writes, if any (what a group may do for several items at once depends on which)."""

    what: str
    write: Callable[..., Any]
    args: tuple[Any, ...]
    key: Hashable | None = None
    done: asyncio.Future = field(default_factory=_future)
    started: bool = False

    def settle(self, *, result: Any = None, error: BaseException | None = None) -> None:
        if self.done.done():
            return
        if error is not None:
            self.done.set_exception(error)
        else:
            self.done.set_result(result)


class Take:
    """The writes of one transaction, taken by the thread that writes them when it starts on them: calls
    after the first (a retry on a new connection) return the same ones."""

    def __init__(self, commits: GroupCommit) -> None:
        self._commits = commits
        self.items: list[Write] | None = None

    def __call__(self) -> list[Write]:
        if self.items is None:
            self._commits._take(self)
        return self.items or []


class GroupCommit:
    """Writes in the order they were asked for; those that waited, together (see the module).

    `together(take)` writes what `take()` returns, in its thread: one write alone as `alone` would, more
    in one transaction. `alone(write)` writes one, when a group failed and each is tried by itself."""

    def __init__(
        self,
        *,
        alone: Callable[[Write], Awaitable[Any]],
        together: Callable[[Take], Awaitable[list[Any]]],
        max_group: int = MAX_GROUP,
    ) -> None:
        self._alone, self._together, self._max = alone, together, max_group
        self._pending: list[Write] = []
        self._lock = threading.Lock()  # the loop adds and drops writes, the ORM's thread takes them
        self._drainer: asyncio.Task | None = None
        self.groups = 0  # transactions that held more than one write

    async def write(
        self, what: str, write: Callable[..., Any], *args: Any, key: Hashable | None = None
    ) -> Any:
        item = Write(what, write, args, key)
        with self._lock:
            self._pending.append(item)
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        try:
            return await asyncio.shield(item.done)
        except asyncio.CancelledError:
            with self._lock:
                if not item.started:  # never taken: dropped, as an ORM call cancelled before it began
                    self._pending.remove(item)
                    raise
            # Being written: its outcome stands whatever the caller does now (as a cancelled ORM call
            # already running in its thread returns its result), so the caller must learn it.
            return await item.done

    async def idle(self) -> None:
        """Until every write asked for so far is written: a write that must come after them waits here."""
        while self._drainer is not None:
            await asyncio.wait({self._drainer})

    def _take(self, take: Take) -> None:
        with self._lock:  # set under the lock: a drainer ending meanwhile must see what was taken
            take.items = group = self._pending[: self._max]
            del self._pending[: len(group)]
            for item in group:
                item.started = True

    async def _drain(self) -> None:
        take = Take(self)
        try:
            while self._pending:
                take = Take(self)
                await self._commit(take)
        except BaseException as error:  # the loop is going away: nobody may wait for ever
            with self._lock:
                left = [*(take.items or ()), *self._pending]
                self._pending.clear()
                for item in left:
                    item.started = True
            for item in left:
                item.settle(error=error)
            raise
        finally:
            self._drainer = None

    async def _commit(self, take: Take) -> None:
        try:
            results = await self._together(take)
        except StoreError as error:  # the database is unavailable: alone, each would fail the same way
            for item in take():
                item.settle(error=error)
            return
        except Exception as error:
            written = take.items is not None  # else it failed before its thread took any: taken here
            group = take()
            if written and len(group) == 1:  # written alone already: its error is its own
                group[0].settle(error=error)
                return
            if len(group) > 1:
                logger.warning(
                    "A group of %s writes failed; writing them one by one", len(group), exc_info=True
                )
            await self._one_by_one(group)
            return
        group = take.items or []
        for item, result in zip(group, results, strict=True):
            item.settle(result=result)
        if len(group) > 1:
            self.groups += 1

    async def _one_by_one(self, group: list[Write]) -> None:
        for item in group:
            try:
                result = await self._alone(item)
            except Exception as error:  # the drainer's own end (cancelled) goes to _drain
                item.settle(error=error)
            else:
                item.settle(result=result)
