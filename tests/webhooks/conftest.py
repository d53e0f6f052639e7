"""A webhook receiver on loopback (aiohttp) that can be told to fail first deliveries."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest
from aiohttp import web


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> str:
        return json.loads(self.body)["event"]


@dataclass
class Receiver:
    url: str = ""
    fail_first: bool = False  # answer 500 to the first request of every delivery
    requests: list[Received] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def ok(self, event: str) -> list[Received]:
        return [r for r in self.requests if r.event == event and r.headers.get("X-Answered") == "200"]

    async def wait_for(self, predicate, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def receiver():
    state = Receiver()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        delivery = request.headers.get("X-SceneStudio-Delivery", "")
        status = 500 if state.fail_first and delivery not in state.seen else 200
        state.seen.add(delivery)
        state.requests.append(Received({**request.headers, "X-Answered": str(status)}, body))
        state.arrived.set()
        return web.Response(status=status, text="ok" if status == 200 else "try later")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}/hook"
    yield state
    await runner.cleanup()
