"""CPU seconds used by processes, from /proc (Linux): a process's own time plus that of its children,
live ones and those it has reaped (a PostgreSQL backend's time lands in the postmaster when it exits)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    return _fields(Path(f"/proc/{pid}/stat"))


def _fields(stat: Path) -> list[str] | None:
    """The fields of a /proc stat file after the command name; None once the process or thread is gone."""
    try:
        text = stat.read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; every field after its closing parenthesis is numeric.
    return text[text.rindex(")") + 2 :].split()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def tree_seconds(pid: int, *, tree: dict[int, list[int]] | None = None) -> float:
    """CPU seconds of `pid` and every descendant, counting reaped children once (in their parent)."""
    tree = _children() if tree is None else tree
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # After the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    # cutime cstime, so utime is index 11 here and cstime index 14.
    own = sum(int(value) for value in fields[11:15]) / TICKS
    return own + sum(tree_seconds(child, tree=tree) for child in tree.get(pid, []))


def total_seconds(pids: list[int]) -> float:
    tree = _children()
    return sum(tree_seconds(pid, tree=tree) for pid in pids)


def thread_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread of `pid`, by thread id (the main thread's id is the pid)."""
    seconds: dict[int, float] = {}
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return seconds
    for thread in threads:
        if (fields := _fields(thread / "stat")) is not None:  # None: it ended meanwhile
            seconds[int(thread.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    return seconds


def by_thread(pid: int, before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
    """Where a process's CPU went between two thread_seconds(): its main thread, its busiest other
    thread, and the rest. In a worker those are the event loop and the ORM's thread (asgiref runs every
    thread-sensitive ORM call in one), then image writes and the like."""
    spent = {tid: seconds - before.get(tid, 0.0) for tid, seconds in after.items()}
    main = spent.pop(pid, 0.0)
    busiest = max(spent.values(), default=0.0)
    return {"main": main, "busiest_other": busiest, "rest": sum(spent.values()) - busiest}
