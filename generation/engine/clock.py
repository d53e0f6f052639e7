"""Time for the engine: the running loop's clock, so a virtual-time loop makes every wait simulated.

Everything in the engine reads time through a `Clock` and waits through it or through asyncio (timeouts,
`asyncio.wait`). Both follow the event loop's `time()`, so running the same code on a `looptime` loop turns
hours of quota waits into milliseconds without a single code path that differs from production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class LoopClock:
    """The running event loop's monotonic clock (virtual on a looptime loop, real otherwise)."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def run_virtual(main: Coroutine[Any, Any, T], *, noop_cycles: int = 1) -> T:
    """Run `main` to completion on a fresh virtual-time loop starting at t=0.

    Sleeps and timeouts fast-forward instantly once nothing else can run. The engine is pure asyncio with
    no threads, so the loop may jump as soon as its ready queue is empty; looptime's default of 42 idle
    cycles per jump only costs wall time here.
    """
    import looptime  # production runs on virtual time only in the planner (the estimate before a run)

    loop = looptime.new_event_loop(start=0.0, noop_cycles=noop_cycles)
    try:
        return loop.run_until_complete(main)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
