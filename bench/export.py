"""Export memory bound: stream the ZIP of a 300-scene project of ~1 MB images through the real view.

Samples the process RSS in a background thread while the response is consumed chunk by chunk (never
joined) and reports the peak growth over the RSS just before the request. The issue's bound: 64 MB.
Measured twice: through the Django test Client (the WSGI handler) and through Django's real ASGI handler,
which is what Daphne runs; plus the contact sheet of the same project through the test Client.

Run standalone from the repository root: `python -m bench.export`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import setup_django

IMAGES = 300
SIDE = 600  # A 600x600 PNG of random noise is ~1.08 MB: noise does not compress.
LIMIT_MB = 64


def noise_pngs(folder: Path, count: int = 3) -> list[Path]:
    """A few distinct noise images; the 300 scene files are copies, which is much faster than encoding."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"noise-{index}.png"
        Image.frombytes("RGB", (SIDE, SIDE), os.urandom(SIDE * SIDE * 3)).save(path, "PNG", compress_level=1)
        paths.append(path)
    return paths


def make_project(workdir: Path, images: int) -> tuple[Any, Any]:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from generation.models import SceneVersion
    from projects import services
    from projects.models import Scene

    user = get_user_model().objects.create_user("bench")
    project = services.project_create(title="Bench export", user=user)
    sources = noise_pngs(workdir / "noise")
    names = [f"projects/{project.pk}/scenes/bench-{i:04d}.png" for i in range(1, images + 1)]
    for index, name in enumerate(names):
        target = Path(settings.MEDIA_ROOT) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[index % len(sources)], target)
    scenes = Scene.objects.bulk_create(
        Scene(project=project, position=i, prompt=f"Scene {i} prompt", image=name, status="ready")
        for i, name in enumerate(names, start=1)
    )
    SceneVersion.objects.bulk_create(
        SceneVersion(scene=s, number=1, image=s.image.name, provider="bench", seed=s.position) for s in scenes
    )
    return project, user


def rss_bytes() -> int:
    try:
        import psutil
    except ImportError:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("No VmRSS in /proc/self/status") from None
    return psutil.Process().memory_info().rss


@dataclass
class RssSampler:
    """Peak RSS seen by a background thread, sampled every few milliseconds."""

    interval: float = 0.002
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RssSampler:
        self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())


@dataclass
class Measure:
    started: float = 0.0
    first_byte: float | None = None
    size: int = 0

    def chunk(self, data: bytes, sink: Any) -> None:
        if self.first_byte is None and data:
            self.first_byte = time.perf_counter()
        self.size += len(data)
        sink.write(data)


def measured(run: Callable[[Measure, Any], None]) -> dict[str, float]:
    """Call `run(measure, sink)`; report size, RSS growth over the baseline, time and time to first byte."""
    gc.collect()
    baseline = rss_bytes()
    measure = Measure()
    with open(os.devnull, "wb") as sink, RssSampler() as sampler:
        measure.started = time.perf_counter()
        run(measure, sink)
        finished = time.perf_counter()
    return {
        "zip_mb": round(measure.size / 2**20, 1),
        "rss_growth_mb": round((sampler.peak - baseline) / 2**20, 1),
        "seconds": round(finished - measure.started, 2),
        "first_byte_ms": round(((measure.first_byte or finished) - measure.started) * 1000, 1),
    }


def via_test_client(client: Any, url: str) -> Callable[[Measure, Any], None]:
    def run(measure: Measure, sink: Any) -> None:
        response = client.get(url)
        assert response.status_code == 200 and response.streaming, response
        chunks: Iterable[bytes] = response.streaming_content
        for data in chunks:
            measure.chunk(data, sink)
        response.close()

    return run


def via_asgi(cookie: str, url: str) -> Callable[[Measure, Any], None]:
    """Drive Django's ASGI handler as Daphne does: one http.response.body message per chunk."""
    from django.core.asgi import get_asgi_application

    async def serve(measure: Measure, sink: Any) -> None:
        app = get_asgi_application()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": url,
            "raw_path": url.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"localhost"), (b"cookie", cookie.encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("localhost", 80),
        }
        statuses: list[int] = []
        request_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # The client never disconnects.
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            else:
                measure.chunk(message.get("body", b""), sink)

        await app(scope, receive, send)
        assert statuses == [200], statuses

    return lambda measure, sink: asyncio.run(serve(measure, sink))


def run_all(workdir: Path) -> dict[str, Any]:
    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    project, user = make_project(workdir, IMAGES)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    zip_url = reverse("project_export_zip", args=[project.pk])
    sheet_url = reverse("project_contact_sheet", args=[project.pk])
    result: dict[str, Any] = {"images": IMAGES, **measured(via_test_client(client, zip_url))}
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    result["asgi"] = measured(via_asgi(cookie, zip_url))
    sheet = measured(via_test_client(client, sheet_url))
    result["contact_sheet"] = {"png_mb": sheet.pop("zip_mb"), **sheet}
    return result


def main() -> dict[str, Any]:
    from django.apps import apps

    if apps.ready:
        # Django is already set up for another database (`python -m bench` runs several modules): measure in
        # a fresh process, which also keeps other benchmarks' memory out of the RSS figures.
        subprocess.run([sys.executable, "-m", "bench.export"], check=True)
        return {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        setup_django(Path(tmp))
        result = run_all(Path(tmp))
    from bench import write_json

    path = write_json("export", result)
    asgi, sheet = result["asgi"], result["contact_sheet"]
    verdict = "within" if max(result["rss_growth_mb"], asgi["rss_growth_mb"]) <= LIMIT_MB else "OVER"
    print(
        f"Export ZIP: {result['images']} images, {result['zip_mb']} MB in {result['seconds']} s, "
        f"first byte {result['first_byte_ms']} ms, RSS +{result['rss_growth_mb']} MB "
        f"(ASGI +{asgi['rss_growth_mb']} MB in {asgi['seconds']} s), {verdict} the {LIMIT_MB} MB bound; "
        f"contact sheet {sheet['png_mb']} MB in {sheet['seconds']} s, RSS +{sheet['rss_growth_mb']} MB "
        f"-> {path}"
    )
    return result


if __name__ == "__main__":
    main()
