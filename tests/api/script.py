"""The full storyboard script an automation user writes, against any HTTP client (see `Api`)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any, Protocol

from tests.conftest import png_bytes

STORY = [
    {"prompt": "Mira climbs the lighthouse stairs", "characters": ["Mira"]},
    {"prompt": "The lamp room at dusk, Mira lights the lamp", "characters": ["Mira"]},
    {"prompt": "A ship turns away from the rocks"},
]
POLLS = 600


class Api(Protocol):
    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]: ...
    def upload(self, path: str, field: str, filename: str, data: bytes) -> tuple[int, Any]: ...
    def download(self, path: str) -> tuple[int, bytes, str]: ...
    def wait(self) -> None: ...


def expect(result: tuple[int, Any], status: int) -> Any:
    code, body = result
    assert code == status, (code, body)
    return body


def storyboard_script(api: Api) -> dict:
    """Create a project, import a story, upload a reference, start a run, poll it to the end, download
    the ZIP. Returns what a test may want to look at."""
    project = expect(api.call("post", "/api/projects", {"title": "Scripted tale"}), 201)
    base = f"/api/projects/{project['id']}"
    imported = expect(api.call("post", base + "/import", {"text": json.dumps(STORY), "format": "json"}), 201)
    assert imported["imported"] == 3
    characters = expect(api.call("get", base + "/characters"), 200)["items"]
    assert [c["name"] for c in characters] == ["Mira"]
    # Before the reference: the preflight names the character that needs one.
    refused = expect(api.call("post", base + "/runs", {}), 409)
    assert refused["code"] == "run_refused" and refused["missing"][0]["name"] == "Mira"
    mira = characters[0]["id"]
    uploaded = expect(
        api.upload(f"{base}/characters/{mira}/reference", "reference", "mira.png", png_bytes()), 200
    )
    assert uploaded["has_reference"]
    run = expect(api.call("post", base + "/runs", {}), 201)
    assert run["created_now"] and run["url"] == f"{base}/runs/{run['id']}"
    for _ in range(POLLS):
        status = expect(api.call("get", run["url"]), 200)
        if not status["active"]:
            break
        api.wait()
    assert status["status"] == "completed", status
    assert (status["total"], status["succeeded"], status["failed"]) == (3, 3, 0)
    attempts = expect(api.call("get", run["url"] + "/attempts"), 200)
    assert attempts["count"] == 3 and {a["status"] for a in attempts["items"]} == {"succeeded"}
    code, data, content_type = api.download(base + "/export.zip")
    assert code == 200 and content_type == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert {"scene_001.png", "scene_002.png", "scene_003.png", "manifest.json"} <= set(names)
    return {"project": project, "run": status, "zip_names": names}
