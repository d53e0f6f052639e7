"""The benchmark's CPU accounting counts a child's time, also once the child has exited and been reaped."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.cpu import total_seconds, tree_seconds

BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"


def test_a_reaped_child_counts_in_its_parent():
    before = tree_seconds(os.getpid())
    subprocess.run([sys.executable, "-c", BURN], check=True, timeout=30)
    assert tree_seconds(os.getpid()) - before >= 0.25


def test_a_live_child_counts_too():
    child = subprocess.Popen(
        [sys.executable, "-c", BURN + "\nimport sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        for _ in range(200):
            if total_seconds([child.pid]) >= 0.25:
                break
            subprocess.run(["sleep", "0.05"], check=True)
        assert total_seconds([child.pid]) >= 0.25
        assert total_seconds([os.getpid()]) >= total_seconds([child.pid])
    finally:
        child.communicate(b"", timeout=10)
