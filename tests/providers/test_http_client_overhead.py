"""The HTTP client's per-request work stays per request: httpcore asks which async library runs on
every lock and event it sets up, importing sniffio to find out. Since anyio stopped depending on sniffio,
a missing sniffio made every one of those a failed import through the whole sys.path (Python caches no
failed import): about a tenth of a worker's CPU (encode/httpcore#1103). sniffio is a dependency."""

from __future__ import annotations

import asyncio
import sys

from httpcore._synchronization import current_async_library


class _CountingFinder:
    def __init__(self) -> None:
        self.lookups = 0

    def find_spec(self, name, path=None, target=None):
        if name == "sniffio":
            self.lookups += 1
        return None


def test_asking_for_the_async_library_imports_nothing_per_request():
    finder = _CountingFinder()
    sys.meta_path.insert(0, finder)
    try:

        async def ask() -> list[str]:
            return [current_async_library() for _ in range(100)]

        assert set(asyncio.run(ask())) == {"asyncio"}
    finally:
        sys.meta_path.remove(finder)
    assert finder.lookups == 0, f"{finder.lookups} imports of sniffio searched sys.path"
