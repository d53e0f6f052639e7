"""OpenAI's Batch API and Gemini's batch mode, faked.

OpenAI: upload a JSONL file (/v1/files), create a batch (/v1/batches), poll it, read its output and
error files, cancel it; items are images/generations or images/edits bodies. Gemini: inline requests
to models/{model}:batchGenerateContent, poll batches/{id}, read its inlined responses, cancel it.

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
    add_gemini_routes(app)


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
            fault = "truncated_image" if custom_id in config.batch_broken_ids else None
            outputs.append(_output_line(server, custom_id, item.get("body") or {}, fault))
    batch.counts.update(completed=len(outputs), failed=len(errors))
    if outputs:
        batch.output_file_id = f"file-{uuid.uuid4().hex[:24]}"
        store.files[batch.output_file_id] = "".join(json.dumps(line) + "\n" for line in outputs)
    if errors:
        batch.error_file_id = f"file-{uuid.uuid4().hex[:24]}"
        store.files[batch.error_file_id] = "".join(json.dumps(line) + "\n" for line in errors)
    batch.status = status


def _output_line(server: FakeProviderServer, custom_id: str, body: dict, fault: str | None) -> dict:
    size = str(body.get("size") or "1024x1024")
    width, height = size_from_text(size if size != "auto" else "1024x1024", server.config.image_max_side)
    usage = {"input_tokens": len(str(body.get("prompt", "")).split()), "output_tokens": 1056}
    answer = {
        "created": int(time.time()),
        "data": [{"b64_json": image_base64(server.next_image(width, height), fault)}],
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


# -- Gemini's batch mode: inline requests, a long-running batch operation, inlined responses ----------

GEMINI_STATES = {
    "completed": "BATCH_STATE_SUCCEEDED",
    "expired": "BATCH_STATE_EXPIRED",
    "cancelled": "BATCH_STATE_CANCELLED",
    "in_progress": "BATCH_STATE_RUNNING",
    "cancelling": "BATCH_STATE_RUNNING",
}


def add_gemini_routes(app: web.Application) -> None:
    app.router.add_get("/v1beta/batches/{name}", gemini_retrieve)
    app.router.add_post("/v1beta/batches/{name}", gemini_cancel)  # "{id}:cancel"


def _gemini_authorized(request: web.Request) -> web.Response | None:
    key = request.headers.get("x-goog-api-key") or request.query.get("key", "")
    expected = request.app[SERVER].config.api_key
    if not key or (expected is not None and key != expected):
        return web.json_response({"error": {"code": 400, "message": "API key not valid."}}, status=400)
    return None


async def gemini_create(request: web.Request, model: str) -> web.StreamResponse:
    if (refused := _gemini_authorized(request)) is not None:
        return refused
    body = request[RECORD].json or {}
    inline = (((body.get("batch") or {}).get("input_config") or {}).get("requests") or {}).get("requests")
    if not isinstance(inline, list) or not inline:
        return web.json_response(
            {"error": {"code": 400, "message": "input_config.requests is required"}}, status=400
        )
    store = request.app[STORE]
    file_id = f"inline-{uuid.uuid4().hex[:12]}"
    store.files[file_id] = "".join(json.dumps({**item, "model": model}) + "\n" for item in inline)
    batch = FakeBatch(
        id=f"batches/{uuid.uuid4().hex[:16]}", input_file_id=file_id, endpoint=model, created=time.monotonic()
    )
    store.batches[batch.id] = batch
    return web.json_response(_gemini_json(request.app[SERVER], store, batch))


async def gemini_retrieve(request: web.Request) -> web.StreamResponse:
    if (refused := _gemini_authorized(request)) is not None:
        return refused
    server: FakeProviderServer = request.app[SERVER]
    store = request.app[STORE]
    batch = store.batches.get(f"batches/{request.match_info['name']}")
    if batch is None:
        return web.json_response({"error": {"code": 404, "message": "Batch not found"}}, status=404)
    if batch.status == "cancelling":
        _gemini_finish(server, store, batch, "cancelled")
    elif batch.status == "in_progress":
        if time.monotonic() - batch.created >= server.config.scaled(server.config.batch_delay_seconds):
            _gemini_finish(server, store, batch, "expired" if server.config.batch_expire else "completed")
    return web.json_response(_gemini_json(server, store, batch))


async def gemini_cancel(request: web.Request) -> web.StreamResponse:
    if (refused := _gemini_authorized(request)) is not None:
        return refused
    name, _, verb = request.match_info["name"].partition(":")
    batch = request.app[STORE].batches.get(f"batches/{name}")
    if batch is None or verb != "cancel":
        return web.json_response({"error": {"code": 404, "message": "Batch not found"}}, status=404)
    if batch.status not in TERMINAL:
        batch.status = "cancelling"
    return web.json_response({})


def _gemini_finish(server: FakeProviderServer, store: BatchStore, batch: FakeBatch, status: str) -> None:
    from generation.fakeprovider.gemini_api import _generate_content

    items = _lines(store.files[batch.input_file_id])
    done = len(items) if status == "completed" else math.ceil(len(items) / 2)
    responses = []
    for index, item in enumerate(items):
        key = (item.get("metadata") or {}).get("key")
        if index >= done:
            error = {"code": 4, "message": f"The batch {status} before this request was done."}
            responses.append({"error": error, "metadata": {"key": key}})
        elif key in server.config.batch_fail_ids or server._rng.random() < server.config.batch_fail_rate:
            responses.append(
                {"error": {"code": 3, "message": "Request failed in the batch."}, "metadata": {"key": key}}
            )
        else:
            fault = "truncated_image" if key in server.config.batch_broken_ids else None
            _, answer = _generate_content(server, item["model"], item.get("request") or {}, fault)
            responses.append({"response": json.loads(answer.body), "metadata": {"key": key}})
    store.files[batch.input_file_id + "-out"] = json.dumps(responses)
    batch.counts.update(
        completed=sum("response" in r for r in responses), failed=sum("error" in r for r in responses)
    )
    batch.status = status


def _gemini_json(server: FakeProviderServer, store: BatchStore, batch: FakeBatch) -> dict:
    answer: dict = {
        "name": batch.id,
        "metadata": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": f"models/{batch.endpoint}",
            "state": GEMINI_STATES.get(batch.status, "BATCH_STATE_FAILED"),
        },
        "done": batch.status in TERMINAL,
    }
    if batch.status in TERMINAL:
        responses = json.loads(store.files.get(batch.input_file_id + "-out", "[]"))
        answer["response"] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
            "inlinedResponses": {"inlinedResponses": responses},
        }
    return answer
