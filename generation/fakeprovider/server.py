"""The fake provider server: one aiohttp app speaking the OpenAI, Gemini, ComfyUI and A1111 wire formats
on loopback, with quotas, latency and faults set by FakeConfig and every request recorded.

Use it in a test's event loop (`async with FakeProviderServer(config) as server:`), in a background
thread (`with FakeProviderServer(config) as server:`), or standalone (`python -m generation.fakeprovider`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from generation.fakeprovider import a1111_api, batches_api, comfyui_api, gemini_api, openai_api
from generation.fakeprovider.config import FakeConfig
from generation.fakeprovider.images import make_png
from generation.fakeprovider.limits import Limits, Verdict, pick_fault, told
from generation.fakeprovider.recorder import FilePart, RecordedRequest, Recorder
from generation.fakeprovider.styles import LATENCY, RECORD, SERVER, Style, html_error

Work = Callable[[str | None], Awaitable[tuple[str, web.StreamResponse]]]
_BASE_PATHS = {"gemini": "/v1beta"}


class FakeProviderServer:
    def __init__(self, config: FakeConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or FakeConfig()
        self.recorder = Recorder()
        self.limits = Limits(lambda: self.config)
        self.comfy = comfyui_api.ComfyState()
        self.host = host
        self.port = port
        self._rng = random.Random(self.config.seed)
        self._counter = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- addresses and run-time control -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, provider: str) -> str:
        """The base_url a provider constructor wants: Gemini's includes /v1beta, the others are bare."""
        return self.url + _BASE_PATHS.get(provider, "")

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.recorder.requests

    def configure(self, **changes: Any) -> FakeConfig:
        self.config.update(changes)
        if "seed" in changes:
            self._rng.seed(self.config.seed)
        return self.config

    def fail_next(self, *faults: str) -> None:
        self.config.update({"fail_next": [*self.config.fail_next, *faults]})

    def reset(self, config: FakeConfig | None = None) -> None:
        """Forget requests, quota windows and ComfyUI state; optionally swap the whole config."""
        if config is not None:
            self.config = config
        self.recorder.clear()
        self.limits.reset()
        self.comfy.clear()
        self._rng.seed(self.config.seed)

    def next_image(self, width: int, height: int) -> bytes:
        return make_png(next(self._counter), width=width, height=height)

    def unsafe(self, text: object) -> bool:
        lowered = str(text or "").lower()
        return any(word and word.lower() in lowered for word in self.config.safety_words)

    # -- the gate every provider endpoint goes through ----------------------------------------------

    async def serve(
        self, request: web.Request, style: Style, work: Work, *, admit: bool = True
    ) -> web.StreamResponse:
        """Auth, then quotas and faults (when admit), then the endpoint's own work."""
        record: RecordedRequest = request[RECORD]
        record.provider = style.name
        if not style.authorized(request, self.config):
            return _done(record, "auth", style.auth_error(request))
        if not admit:
            return _done(record, *await work(None))
        key = style.credential(request)
        verdict = told(self.limits.admit(style.name, key), self.config, style.name)
        if verdict.outcome != "ok":
            return _done(record, verdict.outcome, style.quota_error(verdict))
        try:
            outcome, response = await self._admitted(request, style, verdict, work)
        finally:
            self.limits.release(style.name, key)
        return _done(record, outcome, response)

    async def _admitted(
        self, request: web.Request, style: Style, verdict: Verdict, work: Work
    ) -> tuple[str, web.StreamResponse]:
        config = self.config
        fault = pick_fault(config, self._rng)
        request[LATENCY] = config.scaled(config.latency.sample(self._rng))
        if fault == "timeout":
            request[RECORD].outcome = "timeout"
            await self._hang(config.hang_seconds)
            return "timeout", style.server_error(503)
        if style.sleeps_in_gate and request[LATENCY] > 0:
            await asyncio.sleep(request[LATENCY])
        if fault == "drop":
            if request.transport is not None:
                request.transport.close()
            return "drop", web.Response(status=500)
        if fault in ("500", "503"):
            return fault, style.server_error(int(fault))
        if fault == "html":
            return "html", html_error()
        outcome, response = await work(fault)
        if outcome == "ok":
            response.headers.update(style.success_headers(verdict))
        return (fault or outcome) if outcome == "ok" else outcome, response

    async def _hang(self, seconds: float) -> None:
        # Ends early when the client gives up (aiohttp cancels the handler) or the server stops.
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    # -- lifecycle -----------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=128 * 1024 * 1024, middlewares=[_record_middleware])
        app[SERVER] = self
        openai_api.add_routes(app)
        batches_api.add_routes(app)
        gemini_api.add_routes(app)
        comfyui_api.add_routes(app)
        a1111_api.add_routes(app)
        _add_admin_routes(app)
        return app

    async def start(self) -> FakeProviderServer:
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(
            self.build_app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeProviderServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def start_in_thread(self, timeout: float = 10.0) -> FakeProviderServer:
        """Run the server on its own event loop in a daemon thread (for sync code and benchmarks)."""
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # handed to the starting thread below
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-provider", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise RuntimeError("the fake provider server did not start in time")
        if failure:
            raise failure[0]
        return self

    def stop_thread(self, timeout: float = 10.0) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeProviderServer:
        return self.start_in_thread()

    def __exit__(self, *exc_info: object) -> None:
        self.stop_thread()


def _done(record: RecordedRequest, outcome: str, response: web.StreamResponse) -> web.StreamResponse:
    record.outcome = outcome
    record.status = 0 if outcome == "drop" else response.status
    return response


@web.middleware
async def _record_middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
    if request.path.startswith("/_fake/"):
        return await handler(request)
    record = await _capture(request)
    request.app[SERVER].recorder.add(record)
    request[RECORD] = record
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        record.status = exc.status
        raise
    except asyncio.CancelledError:
        record.status = 0  # the client went away first
        raise
    if record.status is None:
        record.status = response.status
    return response


async def _capture(request: web.Request) -> RecordedRequest:
    record = RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers={name.lower(): value for name, value in request.headers.items()},
    )
    if request.content_type.startswith("multipart/"):
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                data = value.file.read()
                record.files.append(FilePart(name, value.filename, value.content_type, data))
            else:
                record.form[name] = str(value)
    elif request.can_read_body:
        try:
            record.json = json.loads(await request.read())
        except ValueError:
            record.json = None
    return record


def _add_admin_routes(app: web.Application) -> None:
    async def get_config(request: web.Request) -> web.Response:
        return web.json_response(request.app[SERVER].config.to_dict())

    async def post_config(request: web.Request) -> web.Response:
        server = request.app[SERVER]
        try:
            changes = await request.json()
            server.configure(**changes)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(server.config.to_dict())

    async def get_requests(request: web.Request) -> web.Response:
        return web.json_response([r.summary() for r in request.app[SERVER].recorder.requests])

    async def delete_requests(request: web.Request) -> web.Response:
        request.app[SERVER].recorder.clear()
        return web.json_response({"cleared": True})

    async def reset(request: web.Request) -> web.Response:
        request.app[SERVER].reset()
        return web.json_response({"reset": True})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "in_flight": request.app[SERVER].limits.in_flight()})

    app.router.add_get("/_fake/config", get_config)
    app.router.add_post("/_fake/config", post_config)
    app.router.add_get("/_fake/requests", get_requests)
    app.router.add_delete("/_fake/requests", delete_requests)
    app.router.add_post("/_fake/reset", reset)
    app.router.add_get("/_fake/health", health)
