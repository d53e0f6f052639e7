"""OpenAI's Batch API, faked: upload a JSONL file (/v1/files), create a batch (/v1/batches), poll it,
read its output and error files, cancel it. Items are images/generations or images/edits bodies.

A batch completes `batch_delay_seconds` (scaled) after it was created; `batch_expire` makes it expire
then instead, and a cancel ends it at once: either way the first half of its items is done and the rest
fails, as a real batch returns the work it completed. `batch_fail_ids` / `batch_fail_rate` fail items.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from generation.fakeprovider.images import image_base64, size_from_text
from generation.fakeprovider.styles import RECORD, SERVER

if TYPE_CHECKING:
    from generation.fakeprovider.server import FakeProviderServer

TERMINAL = {"completed", "expired", "cancelled", "failed"}


@dataclass
class FakeBatch:
    id: str
    input_file_id: str
    endpoint: str
    created: float
    status: str = "in_progress"
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})


@dataclass
class BatchStore:
    files: dict[str, str] = field(default_factory=dict)
    batches: dict[str, FakeBatch] = field(default_factory=dict)


STORE = web.AppKey("fake_batches", BatchStore)


def add_routes(app: web.Application) -> None:
    app[STORE] = BatchStore()
    app.router.add_post("/v1/files", upload)
    app.router.add_get("/v1/files/{file_id}/content", content)
    app.router.add_post("/v1/batches", create)
    app.router.add_get("/v1/batches/{batch_id}", retrieve)
    app.router.add_post("/v1/batches/{batch_id}/cancel", cancel)


def _authorized(request: web.Request) -> web.Response | None:
    key = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    expected = request.app[SERVER].config.api_key
    if not key or (expected is not None and key != expected):
        body = {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error"}}
        return web.json_response(body, status=401)
    return None


def _not_found(what: str) -> web.Response:
    body = {"error": {"message": f"No such {what}", "type": "invalid_request_error"}}
    return web.json_response(body, status=404)


async def upload(request: web.Request) -> web.StreamResponse:
    if (refused := _authorized(request)) is not None:
        return refused
    record = request[RECORD]
    parts = [part for part in record.files if part.field == "file"]
    if record.form.get("purpose") != "batch" or not parts:
        return web.json_response({"error": {"message": "purpose=batch and a file are required"}}, status=400)
    file_id = f"file-{uuid.uuid4().hex[:24]}"
    text = parts[0].data.decode("utf-8")
    request.app[STORE].files[file_id] = text
    return web.json_response({"id": file_id, "object": "file", "purpose": "batch", "bytes": len(text)})


async def content(request: web.Request) -> web.StreamResponse:
    if (refused := _authorized(request)) is not None:
        return refused
    text = request.app[STORE].files.get(request.match_info["file_id"])
    return _not_found("file") if text is None else web.Response(text=text, content_type="application/jsonl")


async def create(request: web.Request) -> web.StreamResponse:
    if (refused := _authorized(request)) is not None:
        return refused
    body = request[RECORD].json or {}
    store = request.app[STORE]
    if body.get("input_file_id") not in store.files:
        return _not_found("file")
    if body.get("endpoint") not in ("/v1/images/generations", "/v1/images/edits"):
        return web.json_response({"error": {"message": "unsupported endpoint"}}, status=400)
    batch = FakeBatch(
        id=f"batch_{uuid.uuid4().hex[:24]}",
        input_file_id=body["input_file_id"],
        endpoint=body["endpoint"],
        created=time.monotonic(),
    )
    batch.counts["total"] = len(_lines(store.files[batch.input_file_id]))
    store.batches[batch.id] = batch
    return web.json_response(_batch_json(batch))


async def retrieve(request: web.Request) -> web.StreamResponse:
    if (refused := _authorized(request)) is not None:
        return refused
    server: FakeProviderServer = request.app[SERVER]
    batch = request.app[STORE].batches.get(request.match_info["batch_id"])
    if batch is None:
        return _not_found("batch")
    if batch.status == "cancelling":
        _finish(server, request.app[STORE], batch, "cancelled")
    elif batch.status == "in_progress":
        if time.monotonic() - batch.created >= server.config.scaled(server.config.batch_delay_seconds):
            _finish(
                server, request.app[STORE], batch, "expired" if server.config.batch_expire else "completed"
            )
    return web.json_response(_batch_json(batch))


async def cancel(request: web.Request) -> web.StreamResponse:
    if (refused := _authorized(request)) is not None:
        return refused
    batch = request.app[STORE].batches.get(request.match_info["batch_id"])
    if batch is None:
        return _not_found("batch")
    if batch.status not in TERMINAL:
        batch.status = "cancelling"
    return web.json_response(_batch_json(batch))


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _finish(server: FakeProviderServer, store: BatchStore, batch: FakeBatch, status: str) -> None:
    items = _lines(store.files[batch.input_file_id])
    # A batch that expired or was cancelled returns the work it had completed: the first half.
    done = len(items) if status == "completed" else math.ceil(len(items) / 2)
    outputs, errors = [], []
    for index, item in enumerate(items):
        custom_id = item.get("custom_id")
        config = server.config
        if index >= done:
            code = "batch_expired" if status == "expired" else "batch_cancelled"
            errors.append(
                _error_line(custom_id, code, f"This request was not completed before the batch {status}.")
            )
        elif custom_id in config.batch_fail_ids or server._rng.random() < config.batch_fail_rate:
            errors.append(
                _error_line(custom_id, "content_policy_violation", "Rejected by the safety system.")
            )
        else:
            outputs.append(_output_line(server, custom_id, item.get("body") or {}))
    batch.counts.update(completed=len(outputs), failed=len(errors))
    if outputs:
        batch.output_file_id = f"file-{uuid.uuid4().hex[:24]}"
        store.files[batch.output_file_id] = "".join(json.dumps(line) + "\n" for line in outputs)
    if errors:
        batch.error_file_id = f"file-{uuid.uuid4().hex[:24]}"
        store.files[batch.error_file_id] = "".join(json.dumps(line) + "\n" for line in errors)
    batch.status = status


def _output_line(server: FakeProviderServer, custom_id: str, body: dict) -> dict:
    size = str(body.get("size") or "1024x1024")
    width, height = size_from_text(size if size != "auto" else "1024x1024", server.config.image_max_side)
    usage = {"input_tokens": len(str(body.get("prompt", "")).split()), "output_tokens": 1056}
    answer = {
        "created": int(time.time()),
        "data": [{"b64_json": image_base64(server.next_image(width, height), None)}],
    }
    answer["usage"] = {**usage, "total_tokens": usage["input_tokens"] + 1056}
    return {
        "id": f"batch_req_{uuid.uuid4().hex[:16]}",
        "custom_id": custom_id,
        "response": {"status_code": 200, "request_id": uuid.uuid4().hex, "body": answer},
        "error": None,
    }


def _error_line(custom_id: str, code: str, message: str) -> dict:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return {
        "id": f"batch_req_{uuid.uuid4().hex[:16]}",
        "custom_id": custom_id,
        "response": {"status_code": 400, "request_id": uuid.uuid4().hex, "body": body},
        "error": None,
    }


def _batch_json(batch: FakeBatch) -> dict:
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "input_file_id": batch.input_file_id,
        "completion_window": "24h",
        "status": batch.status,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": int(time.time()),
        "request_counts": batch.counts,
    }
