"""CPU the event loop spends per provider request: the OpenAI provider against the fake server (in a
process of its own, zero latency, 64x64 images), REQUESTS requests with CONCURRENCY in flight, on uvloop
as in a worker, through

- `providers`: the providers' own client (`make_client`: httpx over aiohttp's pool, transport.py);
- `httpx_stock`: httpx's own transport (httpcore on anyio), for reference.

Both count the whole request as a provider makes it: building it, sending, reading, the JSON and the
image check (done on the loop for small images). Rounds alternate between the two, medians reported;
the ratio is what to read on a noisy machine.

    python -m bench http_client    # writes var/bench/http_client.json
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import uvloop

from bench import write_json
from generation.providers.base import ImageRequest
from generation.providers.http import _ssl_context, make_client
from generation.providers.openai import OpenAIProvider
from tests.scale.servers import Cluster

REQUESTS = 2000
CONCURRENCY = 8
ROUNDS = 5
WARM_UP = 50


def _client(kind: str) -> httpx.AsyncClient:
    if kind == "providers":
        return make_client(max_connections=64)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    timeout = httpx.Timeout(connect=10, read=90, write=30, pool=None)
    return httpx.AsyncClient(limits=limits, timeout=timeout, verify=_ssl_context())


async def _round(kind: str, url: str) -> float:
    """Milliseconds of the loop thread's CPU per request."""
    client = _client(kind)
    provider = OpenAIProvider(api_key="bench-key", base_url=url, client=client)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(number: int) -> None:
        async with gate:
            await provider.generate(ImageRequest(prompt=f"Scene {number}"))

    try:
        await asyncio.gather(*(one(n) for n in range(WARM_UP)))  # connections open, imports done
        started = time.thread_time()
        await asyncio.gather(*(one(n) for n in range(REQUESTS)))
        return (time.thread_time() - started) * 1000 / REQUESTS
    finally:
        await client.aclose()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="scenestudio-bench-") as tmp:
        cluster = Cluster(Path(tmp), database_url="sqlite:///unused", redis_url=None, env={})
        try:
            url = cluster.start_fake_provider("--latency", "0")  # OpenAI's paths are bare
            rounds: dict[str, list[float]] = {"providers": [], "httpx_stock": []}
            for _ in range(ROUNDS):
                for kind, figures in rounds.items():
                    figures.append(round(uvloop.run(_round(kind, url)), 3))
        finally:
            cluster.stop()
    medians = {kind: statistics.median(figures) for kind, figures in rounds.items()}
    report = {
        "loop_cpu_ms_per_request": medians,
        "providers_vs_httpx_stock": round(medians["providers"] / medians["httpx_stock"], 3),
        "rounds": rounds,
        "workload": f"{REQUESTS} requests, {CONCURRENCY} in flight, OpenAI provider, fake server process, "
        "zero latency, uvloop",
    }
    path = write_json("http_client", report)
    print(f"http_client: loop CPU ms/request {medians} -> {path}")


if __name__ == "__main__":
    main()
