"""Run the fake provider server standalone:

    python -m generation.fakeprovider --port 8765 --rpm 20 --latency 2 [--omit retry_after]

Then point a provider at http://127.0.0.1:8765 (Gemini: http://127.0.0.1:8765/v1beta) and change the
behaviour at run time with POST /_fake/config; GET /_fake/requests lists what arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from generation.fakeprovider.config import FAULTS, OMITTABLE, FakeConfig, Latency
from generation.fakeprovider.server import FakeProviderServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m generation.fakeprovider",
        description="Fake OpenAI, Gemini, ComfyUI and A1111 image APIs on one loopback port.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds per request (lognormal: the median)"
    )
    parser.add_argument("--latency-kind", choices=("constant", "lognormal"), default="constant")
    parser.add_argument("--sigma", type=float, default=0.5, help="lognormal spread")
    parser.add_argument("--rpm", type=int, default=None, help="requests per rolling minute per key")
    parser.add_argument("--max-concurrent", type=int, default=None)
    parser.add_argument("--daily-limit", type=int, default=None)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=RATE",
        help=f"fault rate, repeatable; names: {', '.join(FAULTS)}",
    )
    parser.add_argument("--api-key", default=None, help="the only key accepted (default: any)")
    parser.add_argument("--safety-word", action="append", default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--omit",
        action="append",
        default=[],
        metavar="[FLAVOR:]WHAT",
        help=f"keep quiet about WHAT ({', '.join(OMITTABLE)}), for every flavor or one "
        "(e.g. --omit retry_after --omit gemini:rate_headers); repeatable",
    )
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> FakeConfig:
    faults = {}
    for item in args.fault:
        name, _, rate = item.partition("=")
        if name not in FAULTS:
            raise SystemExit(f"unknown fault {name!r}; choose from {', '.join(FAULTS)}")
        faults[name] = float(rate or 0.1)
    for item in args.omit:
        if item.rpartition(":")[2] not in OMITTABLE:
            raise SystemExit(f"unknown --omit {item!r}; choose from {', '.join(OMITTABLE)}")
    config = FakeConfig(
        latency=Latency(kind=args.latency_kind, seconds=args.latency, sigma=args.sigma),
        time_scale=args.time_scale,
        rpm=args.rpm,
        max_concurrent=args.max_concurrent,
        daily_limit=args.daily_limit,
        faults=faults,
        api_key=args.api_key,
        seed=args.seed,
        omit=list(args.omit),
    )
    if args.safety_word is not None:
        config.safety_words = args.safety_word
    return config


async def serve(args: argparse.Namespace) -> None:
    server = FakeProviderServer(config_from(args), host=args.host, port=args.port)
    await server.start()
    print(
        f"Fake image providers on {server.url} (Gemini at {server.base_url('gemini')}); Ctrl-C stops",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
