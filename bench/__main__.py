"""Run benchmark modules: `python -m bench` runs every one, `python -m bench engine_sim export` a subset.

Each module lives in this package, exposes `main()` and writes its JSON under var/bench/ (see
`bench.write_json`); add yours to MODULES. One failing benchmark does not stop the others. Options after
the names go to every named module whose `main` takes an argv list, e.g.
`python -m bench engine_sim --scenarios my_provider.json` (see bench/README.md).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
import traceback

MODULES = [
    "engine_sim",  # the scheduler against the seed and the bound, on simulated time
    "engine_http",  # the same scheduler through the fake server over HTTP, time-scaled
    "engine_db",  # the engine with every database write, on the wall clock
    "sketch",  # render time of the offline default provider
    "export",  # memory bound of the streamed ZIP export
    "live",  # live events to 50 WebSocket watchers of a real server
    "scale",  # scenes/s on SQLite, and PostgreSQL + Redis with 1 and 2 worker processes
    "import_story",  # a 2 MB story import with 200 new characters (var/bench/import.json)
    "reload",  # a reload mid-run in Chromium: ms until the page shows the true state
    "http_client",  # loop CPU per provider request: the providers' transport against httpx's own
]


def main(argv: list[str]) -> int:
    first_option = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    options = argv[first_option:]
    names = [name.removeprefix("bench.") for name in argv[:first_option]] or MODULES
    unknown = [name for name in names if name not in MODULES]
    if unknown:
        known = ", ".join(MODULES)
        print(f"Unknown benchmark(s): {', '.join(unknown)}; choose from {known}", file=sys.stderr)
        return 2
    failed = [name for name in names if not run(name, options)]
    if failed:
        print(f"Failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def run(name: str, options: list[str] | None = None) -> bool:
    print(f"== bench.{name}", flush=True)
    started = time.perf_counter()
    try:
        entry = importlib.import_module(f"bench.{name}").main
        if options and inspect.signature(entry).parameters:
            entry(options)
        else:
            entry()
    except Exception:
        traceback.print_exc()
        return False
    print(f"== bench.{name} done in {time.perf_counter() - started:.1f}s", flush=True)
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
