"""Fake Gemini API under /v1beta: Imagen `models/{model}:predict` and `models/{model}:generateContent`."""

from __future__ import annotations

import base64
import binascii
import math
from typing import TYPE_CHECKING, Any

from aiohttp import web

from generation.fakeprovider.images import image_base64, size_from_ratio
from generation.fakeprovider.limits import Verdict
from generation.fakeprovider.styles import RECORD, SERVER, Style, json_reply

if TYPE_CHECKING:
    from generation.fakeprovider.server import FakeProviderServer

IMAGEN_RATIOS = {"1:1", "3:4", "4:3", "9:16", "16:9"}
GEMINI_RATIOS = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
_RPC = "type.googleapis.com/google.rpc."
_CODES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _error(status: int, message: str, details: list[dict] | None = None) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": _CODES[status]}
    if details:
        error["details"] = details
    return json_reply({"error": error}, status=status)


def _google_duration(seconds: float) -> str:
    # Google sends whole seconds ("13s"); scaled-down waits under a second keep their milliseconds.
    if seconds >= 1:
        return f"{math.ceil(seconds)}s"
    return f"{max(0.0, seconds):.3f}".rstrip("0").rstrip(".") + "s"


def _quota_failure(per_day: bool, limit: int | None) -> dict:
    period = "PerDay" if per_day else "PerMinute"
    metric = "generate_requests_per_model" + ("_per_day" if per_day else "")
    violation = {
        "quotaMetric": f"generativelanguage.googleapis.com/{metric}",
        "quotaId": f"GenerateRequests{period}PerProjectPerModel-FreeTier",
        "quotaDimensions": {"location": "global", "model": "fake"},
    }
    if limit is not None:
        violation["quotaValue"] = str(limit)
    return {"@type": _RPC + "QuotaFailure", "violations": [violation]}


class GeminiStyle(Style):
    name = "gemini"
    needs_key = True

    def credential(self, request: web.Request) -> str:
        return request.headers.get("x-goog-api-key") or request.query.get("key", "")

    def auth_error(self, request: web.Request) -> web.Response:
        # The real API answers a wrong key with 400 API_KEY_INVALID and a missing one with 403.
        if not self.credential(request):
            return _error(
                403, "Method doesn't allow unregistered callers (callers without established identity)."
            )
        info = {
            "@type": _RPC + "ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
        return _error(400, "API key not valid. Please pass a valid API key.", [info])

    def quota_error(self, verdict: Verdict) -> web.Response:
        if verdict.outcome == "concurrency":
            return _error(429, "Resource has been exhausted (e.g. check quota).")
        per_day = verdict.outcome == "daily_quota"
        message = "You exceeded your current quota, please check your plan and billing details."
        if verdict.retry_after is not None:
            message += f" Please retry in {verdict.retry_after:.3f}s."
        details = [
            _quota_failure(per_day, verdict.limit),
            {
                "@type": _RPC + "Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
        ]
        if verdict.retry_after is not None:
            details.append({"@type": _RPC + "RetryInfo", "retryDelay": _google_duration(verdict.retry_after)})
        return _error(429, message, details)

    def server_error(self, status: int) -> web.Response:
        if status == 503:
            return _error(503, "The model is overloaded. Please try again later.")
        return _error(
            500, "An internal error has occurred. Please retry or report in the troubleshooting guide."
        )


STYLE = GeminiStyle()


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1beta/models/{target}", model_method)


async def model_method(request: web.Request) -> web.StreamResponse:
    server: FakeProviderServer = request.app[SERVER]
    model, _, method = request.match_info["target"].partition(":")
    body = request[RECORD].json
    if method == "batchGenerateContent":  # batch mode: no per-request quota, answered later
        from generation.fakeprovider.batches_api import gemini_create

        return await gemini_create(request, model)
    handlers = {"predict": _predict, "generateContent": _generate_content}

    async def work(fault: str | None) -> tuple[str, web.StreamResponse]:
        handler = handlers.get(method)
        if handler is None or (method == "predict") != model.startswith("imagen"):
            message = f"models/{model} is not found for API version v1beta, or is not supported for {method}."
            return "invalid", _error(404, message)
        if not isinstance(body, dict):
            return "invalid", _error(400, "Invalid JSON payload received.")
        return handler(server, model, body, fault)

    return await server.serve(request, STYLE, work)


def _predict(
    server: FakeProviderServer, model: str, body: dict, fault: str | None
) -> tuple[str, web.Response]:
    instances = body.get("instances")
    prompt = instances[0].get("prompt") if isinstance(instances, list) and instances else None
    if not isinstance(prompt, str) or not prompt:
        return "invalid", _error(400, "Invalid value at 'instances[0].prompt': a prompt is required.")
    parameters = body.get("parameters") or {}
    ratio = parameters.get("aspectRatio", "1:1")
    if ratio not in IMAGEN_RATIOS:
        return "invalid", _error(400, f"Unsupported aspect ratio: {ratio}.")
    if server.unsafe(prompt):
        return "safety", json_reply({})  # Imagen leaves filtered images out of the answer
    png = server.next_image(*size_from_ratio(ratio, server.config.image_max_side))
    prediction = {"mimeType": "image/png", "bytesBase64Encoded": image_base64(png, fault)}
    return "ok", json_reply({"predictions": [prediction]}, fault=fault)


def _generate_content(
    server: FakeProviderServer, model: str, body: dict, fault: str | None
) -> tuple[str, web.Response]:
    contents = body.get("contents")
    parts = [
        p for c in contents or [] if isinstance(c, dict) for p in c.get("parts") or [] if isinstance(p, dict)
    ]
    prompt = " ".join(str(p["text"]) for p in parts if "text" in p)
    if not parts or not prompt:
        return "invalid", _error(400, "* GenerateContentRequest.contents: contents is not specified")
    if not all(_valid_inline(p) for p in parts if "inline_data" in p or "inlineData" in p):
        return "invalid", _error(400, "Unable to process input image. Please retry or report in the guide.")
    image_config = (body.get("generationConfig") or {}).get("imageConfig") or {}
    ratio = image_config.get("aspectRatio", "1:1")
    if ratio not in GEMINI_RATIOS:
        return "invalid", _error(400, f"Unsupported aspect ratio: {ratio}.")
    usage = {"promptTokenCount": len(prompt.split()), "candidatesTokenCount": 1290}
    if server.unsafe(prompt):
        if server.config.gemini_block_style == "prompt_feedback":
            return "safety", json_reply(
                {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": usage}
            )
        blocked = {"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}], "usageMetadata": usage}
        return "safety", json_reply(blocked)
    png = server.next_image(*size_from_ratio(ratio, server.config.image_max_side))
    snake = server.config.gemini_snake_case
    inline = {"mime_type" if snake else "mimeType": "image/png", "data": image_base64(png, fault)}
    content = {
        "role": "model",
        "parts": [{"text": "Here is your scene."}, {"inline_data" if snake else "inlineData": inline}],
    }
    answer = {
        "candidates": [{"content": content, "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage,
        "modelVersion": model,
    }
    return "ok", json_reply(answer, fault=fault)


def _valid_inline(part: dict) -> bool:
    inline = part.get("inline_data") or part.get("inlineData") or {}
    mime = inline.get("mime_type") or inline.get("mimeType") or ""
    try:
        base64.b64decode(inline.get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        return False
    return str(mime).startswith("image/") and bool(inline.get("data"))
