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


# Two threads burn 0.6 s and 0.2 s of CPU and stay alive (a thread's own time is only readable while
# it lives), while the main thread waits.
THREADS = """
import sys, threading, time
burnt, release = threading.Semaphore(0), threading.Event()
def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    burnt.release()
    release.wait()
threads = [threading.Thread(target=burn, args=(s,)) for s in (0.6, 0.2)]
sys.stdin.readline()
[t.start() for t in threads]
burnt.acquire(); burnt.acquire()
print("burnt", flush=True)
sys.stdin.readline()
release.set()
"""


def test_a_process_cpu_splits_into_its_main_thread_its_busiest_other_and_the_rest():
    from bench.cpu import by_thread, thread_seconds

    child = subprocess.Popen([sys.executable, "-c", THREADS], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        before = thread_seconds(child.pid)
        child.stdin.write(b"go\n")
        child.stdin.flush()
        assert child.stdout.readline() == b"burnt\n"
        split = by_thread(child.pid, before, thread_seconds(child.pid))
    finally:
        child.communicate(b"\n", timeout=10)
    assert 0.55 <= split["busiest_other"] <= 0.8
    assert 0.15 <= split["rest"] <= 0.35
    assert split["main"] < 0.1
