"""CPU seconds used by processes, from /proc (Linux): a process's own time plus that of its children,
live ones and those it has reaped (a PostgreSQL backend's time lands in the postmaster when it exits)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
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
