"""Render time of the offline sketch provider, the default of `make run` (target: well under 100 ms)."""

from __future__ import annotations

import io
import statistics
import time

from PIL import Image

from bench import write_json
from generation.providers.base import ImageRequest, Reference
from generation.providers.sketch import render_panel

PANELS = 50


def reference(color: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def main() -> dict:
    refs = (
        Reference("Gopal", reference((200, 80, 40), (1024, 1536))),
        Reference("Raja", reference((40, 40, 160), (512, 512))),
    )
    timings = []
    for seed in range(PANELS):
        request = ImageRequest(
            prompt=f"Gopal bows to the Raja, panel {seed}", seed=seed, references=refs, label="Scene 1"
        )
        started = time.perf_counter()
        render_panel(request)
        timings.append((time.perf_counter() - started) * 1000)
    result = {
        "panels": PANELS,
        "first_ms": round(timings[0], 1),
        "median_ms": round(statistics.median(timings), 1),
        "p95_ms": round(sorted(timings)[int(PANELS * 0.95) - 1], 1),
    }
    write_json("sketch", result)
    print(
        f"sketch panel with 2 references: first {result['first_ms']} ms, median {result['median_ms']} ms, "
        f"p95 {result['p95_ms']} ms"
    )
    return result


if __name__ == "__main__":
    main()
