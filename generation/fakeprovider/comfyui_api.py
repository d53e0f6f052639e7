"""Fake ComfyUI: /upload/image, /prompt, /history/{id} and /view, with validation close enough to the
real server's that a workflow with unreplaced placeholders or unknown uploads is refused."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from generation.fakeprovider.images import fit, image_bytes
from generation.fakeprovider.styles import LATENCY, RECORD, SERVER, Style, json_reply

if TYPE_CHECKING:
    from generation.fakeprovider.server import FakeProviderServer

OUTPUT_NODES = {"SaveImage": "output", "PreviewImage": "temp"}
SEED_INPUTS = {"seed", "noise_seed"}


@dataclass
class Job:
    prompt_id: str
    number: int
    workflow: dict
    client_id: str
    ready_at: float
    node_id: str
    image: dict  # {"filename", "subfolder", "type"}


class ComfyState:
    """Uploaded inputs, queued jobs and output files, shared by the handlers of one server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.uploads: dict[str, bytes] = {}  # "subfolder/name" or "name" -> bytes
            self.jobs: dict[str, Job] = {}
            self.files: dict[tuple[str, str, str], bytes] = {}  # (filename, subfolder, type) -> bytes
            self._numbers = itertools.count(1)

    def upload(self, name: str, subfolder: str, data: bytes, overwrite: bool) -> str:
        with self._lock:
            stem, dot, ext = name.rpartition(".")
            candidate, n = name, 1
            # Like ComfyUI: an existing different file gets a " (n)" suffix unless overwrite is asked.
            while not overwrite and self.uploads.get(_path(subfolder, candidate), data) != data:
                candidate = f"{stem} ({n}){dot}{ext}" if dot else f"{name} ({n})"
                n += 1
            self.uploads[_path(subfolder, candidate)] = data
            return candidate

    def next_number(self) -> int:
        return next(self._numbers)


def _path(subfolder: str, name: str) -> str:
    return f"{subfolder}/{name}" if subfolder else name


class ComfyStyle(Style):
    name = "comfyui"
    sleeps_in_gate = False  # /prompt answers at once; the latency is how long the job takes to run


STYLE = ComfyStyle()


def add_routes(app: web.Application) -> None:
    app.router.add_post("/upload/image", upload_image)
    app.router.add_post("/prompt", queue_prompt)
    app.router.add_get("/history/{prompt_id}", history)
    app.router.add_get("/view", view)
    app.router.add_get("/system_stats", system_stats)


async def upload_image(request: web.Request) -> web.StreamResponse:
    server: FakeProviderServer = request.app[SERVER]
    record = request[RECORD]

    async def work(fault: str | None) -> tuple[str, web.StreamResponse]:
        image = next((part for part in record.files if part.field == "image"), None)
        if image is None:
            return "invalid", web.Response(status=400)
        subfolder = record.form.get("subfolder", "")
        overwrite = record.form.get("overwrite", "").lower() == "true"
        name = server.comfy.upload(image.filename, subfolder, image.data, overwrite)
        return "ok", json_reply(
            {"name": name, "subfolder": subfolder, "type": record.form.get("type", "input")}
        )

    return await server.serve(request, STYLE, work, admit=False)


async def queue_prompt(request: web.Request) -> web.StreamResponse:
    server: FakeProviderServer = request.app[SERVER]
    body = request[RECORD].json

    async def work(fault: str | None) -> tuple[str, web.StreamResponse]:
        workflow = body.get("prompt") if isinstance(body, dict) else None
        if not isinstance(workflow, dict):
            return "invalid", _prompt_error("invalid_prompt", "Invalid prompt: no workflow given", {})
        outputs = [nid for nid, node in workflow.items() if _class(node) in OUTPUT_NODES]
        if not outputs:
            return "invalid", _prompt_error("prompt_no_outputs", "Prompt has no outputs", {})
        node_errors = {nid: err for nid, node in workflow.items() if (err := _node_error(server, node))}
        if node_errors:
            return "invalid", _prompt_error(
                "prompt_outputs_failed_validation", "Prompt outputs failed validation", node_errors
            )
        job = _make_job(server, workflow, str(body.get("client_id", "")), outputs[0], request[LATENCY], fault)
        return "ok", json_reply({"prompt_id": job.prompt_id, "number": job.number, "node_errors": {}})

    return await server.serve(request, STYLE, work)


def _class(node: Any) -> str:
    return str(node.get("class_type", "")) if isinstance(node, dict) else ""


def _node_error(server: FakeProviderServer, node: Any) -> dict | None:
    if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
        return _validation(node, "required_input_missing", "Node has no inputs")
    for name, value in node["inputs"].items():
        if isinstance(value, str) and "{{" in value:
            return _validation(node, "value_not_valid", f"{name} - unreplaced placeholder {value!r}")
        if name in SEED_INPUTS and not isinstance(value, int | list):
            return _validation(
                node,
                "invalid_input_type",
                f"Failed to convert an input value to a INT value: {name}, {value}",
            )
    image = node["inputs"].get("image")
    if _class(node) == "LoadImage" and image not in server.comfy.uploads:
        return _validation(node, "custom_validation_failed", f"image - Invalid image file: {image}")
    return None


def _validation(node: Any, kind: str, details: str) -> dict:
    error = {
        "type": kind,
        "message": "Value not in list" if "image" in details else "Invalid input",
        "details": details,
        "extra_info": {},
    }
    return {"errors": [error], "dependent_outputs": [], "class_type": _class(node)}


def _prompt_error(kind: str, message: str, node_errors: dict) -> web.Response:
    error = {"type": kind, "message": message, "details": "", "extra_info": {}}
    return json_reply({"error": error, "node_errors": node_errors}, status=400)


def _make_job(
    server: FakeProviderServer,
    workflow: dict,
    client_id: str,
    node_id: str,
    latency: float,
    fault: str | None,
) -> Job:
    number = server.comfy.next_number()
    kind = OUTPUT_NODES[_class(workflow[node_id])]
    image = {"filename": f"ComfyUI_{number:05d}_.png", "subfolder": "", "type": kind}
    png = server.next_image(*_latent_size(workflow, server.config.image_max_side))
    # Body faults land on the file /view serves, since that is where ComfyUI's bytes come from.
    broken = "not_image" if fault in ("not_image", "bad_base64") else "truncated_image" if fault else None
    server.comfy.files[(image["filename"], "", kind)] = image_bytes(png, broken)
    job = Job(uuid.uuid4().hex, number, workflow, client_id, time.monotonic() + latency, node_id, image)
    server.comfy.jobs[job.prompt_id] = job
    return job


def _latent_size(workflow: dict, max_side: int) -> tuple[int, int]:
    for node in workflow.values():
        inputs = node.get("inputs") or {} if isinstance(node, dict) else {}
        if isinstance(inputs.get("width"), int) and isinstance(inputs.get("height"), int):
            return fit(inputs["width"], inputs["height"], max_side)
    return max_side, max_side


async def history(request: web.Request) -> web.StreamResponse:
    server: FakeProviderServer = request.app[SERVER]
    prompt_id = request.match_info["prompt_id"]

    async def work(fault: str | None) -> tuple[str, web.StreamResponse]:
        job = server.comfy.jobs.get(prompt_id)
        if job is None or time.monotonic() < job.ready_at:
            return "pending", json_reply({})
        return "ok", json_reply({prompt_id: _history_entry(job)})

    return await server.serve(request, STYLE, work, admit=False)


def _history_entry(job: Job) -> dict:
    return {
        "prompt": [job.number, job.prompt_id, job.workflow, {"client_id": job.client_id}, [job.node_id]],
        "outputs": {job.node_id: {"images": [job.image]}},
        "status": {
            "status_str": "success",
            "completed": True,
            "messages": [
                ["execution_start", {"prompt_id": job.prompt_id}],
                ["execution_success", {"prompt_id": job.prompt_id}],
            ],
        },
        "meta": {job.node_id: {"node_id": job.node_id, "display_node": job.node_id}},
    }


async def view(request: web.Request) -> web.StreamResponse:
    server: FakeProviderServer = request.app[SERVER]
    key = (
        request.query.get("filename", ""),
        request.query.get("subfolder", ""),
        request.query.get("type", "output"),
    )

    async def work(fault: str | None) -> tuple[str, web.StreamResponse]:
        data = server.comfy.files.get(key)
        if data is None:
            return "invalid", web.Response(status=404)
        return "ok", web.Response(body=data, content_type="image/png")

    return await server.serve(request, STYLE, work, admit=False)


async def system_stats(request: web.Request) -> web.Response:
    return json_reply({"system": {"os": "fake", "comfyui_version": "fake"}, "devices": []})
