"""The cyclic garbage collector's settings for the studio's long-running processes (Daphne, the worker).

A worker allocates thousands of container objects per generated image (requests, rows, futures), and
reference counting frees almost all of them. The collector still runs every 700 allocations by default,
walking the young objects each time, and its rarer full passes walk the ~190,000 objects that start-up
built (modules, settings, the URLconf, models), which live as long as the process does.

Measured with gc.callbacks in each worker of a `bench scale` round (PostgreSQL, two workers, 200 images
each): about 40 collections and 0.035 s of CPU per worker, 3-4% of its CPU, with the defaults; 2
collections and 0.01 s with start-up frozen and the young generation collected every 10,000 allocations.
Keeping start-up out of every later pass is what gc.freeze() is for; the collector still frees every
cycle made afterwards, only in fewer, larger passes.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations between passes over the young generation (Python's default: 700)


def settle_heap() -> None:
    """Call once start-up is done, before serving: what it left behind stays, outside the collector."""
    gc.collect()  # start-up's garbage is freed, not frozen with the rest
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
