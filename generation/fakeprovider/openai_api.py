"""Fake OpenAI Images API: POST /v1/images/generations (JSON) and /v1/images/edits (multipart)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from aiohttp import web

from generation.fakeprovider.images import image_base64, size_from_text
from generation.fakeprovider.limits import Verdict
from generation.fakeprovider.styles import RECORD, SERVER, Style, json_reply, retry_after_headers

if TYPE_CHECKING:
    from generation.fakeprovider.server import FakeProviderServer

SIZES = {"gpt-image-1": {"1024x1024", "1536x1024", "1024x1536", "auto"}}
MAX_IMAGES = 16
_IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp"}


def _error(
    message: str, *, kind: str, code: str | None, status: int, param: str | None = None, **headers: str
):
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return json_reply(body, status=status, headers={"x-request-id": f"req_{uuid.uuid4().hex}", **headers})


def _go_duration(seconds: float) -> str:
    """Format like OpenAI's x-ratelimit-reset-* headers: "20ms", "1.5s", "6m0s"."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


class OpenAIStyle(Style):
    name = "openai"
    needs_key = True

    def auth_error(self, request: web.Request) -> web.Response:
        key = self.credential(request)
        if not key:
            message = (
                "You didn't provide an API key. You need to provide your API key in an Authorization header."
            )
            return _error(message, kind="invalid_request_error", code=None, status=401)
        masked = f"{key[:3]}***{key[-2:]}" if len(key) > 6 else "***"
        message = f"Incorrect API key provided: {masked}. You can find your API key in your account settings."
        return _error(message, kind="invalid_request_error", code="invalid_api_key", status=401)

    def quota_error(self, verdict: Verdict) -> web.Response:
        if verdict.outcome == "daily_quota" and verdict.reset is not None:
            message = "Rate limit reached for gpt-image-1 on requests per day (RPD). Please try again later."
            headers = {
                "x-ratelimit-reset-requests": _go_duration(verdict.reset),
                "x-ratelimit-remaining-requests": "0",
            }
            return _error(message, kind="requests", code="rate_limit_exceeded", status=429, **headers)
        if verdict.outcome == "daily_quota":
            message = "You exceeded your current quota, please check your plan and billing details."
            return _error(message, kind="insufficient_quota", code="insufficient_quota", status=429)
        headers = {**retry_after_headers(verdict.retry_after), **self.success_headers(verdict)}
        if verdict.outcome == "concurrency":
            message = "Too many concurrent requests. Please slow down."
        else:
            message = "Rate limit reached for gpt-image-1 on requests per min (RPM)"
            if verdict.limit is not None:
                message += f": Limit {verdict.limit}, Used {verdict.limit}, Requested 1"
            message += "."
            if verdict.retry_after is not None:
                message += f" Please try again in {verdict.retry_after:.3f}s."
        return _error(message, kind="requests", code="rate_limit_exceeded", status=429, **headers)

    def server_error(self, status: int) -> web.Response:
        if status == 503:
            message = "The server is overloaded or not ready yet."
        else:
            message = "The server had an error while processing your request. Sorry about that!"
        return _error(message, kind="server_error", code=None, status=status)

    def success_headers(self, verdict: Verdict) -> dict[str, str]:
        if verdict.limit is None:
            return {}
        return {
            "x-ratelimit-limit-requests": str(verdict.limit),
            "x-ratelimit-remaining-requests": str(verdict.remaining or 0),
            "x-ratelimit-reset-requests": _go_duration(verdict.reset or 0.0),
        }


STYLE = OpenAIStyle()


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/images/generations", generations)
    app.router.add_post("/v1/images/edits", edits)


def _server(request: web.Request) -> FakeProviderServer:
    return request.app[SERVER]


async def generations(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    body = request[RECORD].json

    async def work(fault: str | None) -> tuple[str, web.StreamResponse]:
        if not isinstance(body, dict):
            return "invalid", _invalid("We could not parse the JSON body of your request.")
        return _answer(server, body, fault)

    return await server.serve(request, STYLE, work)


async def edits(request: web.Request) -> web.StreamResponse:
    server = _server(request)
    record = request[RECORD]

    async def work(fault: str | None) -> tuple[str, web.StreamResponse]:
        images = [part for part in record.files if part.field in ("image[]", "image")]
        if not images:
            return "invalid", _invalid("Missing required parameter: 'image'.", param="image")
        if len(images) > MAX_IMAGES:
            return "invalid", _invalid(f"Too many images: at most {MAX_IMAGES} are allowed.", param="image")
        if any(part.content_type not in _IMAGE_TYPES for part in images):
            return "invalid", _invalid("Invalid file: images must be PNG, JPEG or WebP.", param="image")
        return _answer(server, dict(record.form), fault)

    return await server.serve(request, STYLE, work)


def _invalid(message: str, *, param: str | None = None) -> web.Response:
    return _error(message, kind="invalid_request_error", code=None, status=400, param=param)


def _answer(server: FakeProviderServer, body: dict, fault: str | None) -> tuple[str, web.StreamResponse]:
    prompt, model = body.get("prompt"), str(body.get("model") or "dall-e-2")
    size = str(body.get("size") or "auto")
    if not prompt:
        return "invalid", _invalid("Missing required parameter: 'prompt'.", param="prompt")
    if model in SIZES and size not in SIZES[model]:
        supported = ", ".join(f"'{s}'" for s in sorted(SIZES[model]))
        return "invalid", _invalid(
            f"Invalid value: '{size}'. Supported values are: {supported}.", param="size"
        )
    if server.unsafe(prompt):
        message = (
            "Your request was rejected by the safety system. If you believe this is an error, contact us "
            "and include the request ID. safety_violations=[violence]."
        )
        return "safety", _error(
            message, kind="image_generation_user_error", code="moderation_blocked", status=400
        )
    width, height = size_from_text(size if size != "auto" else "1024x1024", server.config.image_max_side)
    png = server.next_image(width, height)
    answer = {
        "created": int(time.time()),
        "data": [{"b64_json": image_base64(png, fault)}],
        "output_format": body.get("output_format", "png"),
        "quality": body.get("quality", "auto"),
        "size": size,
        "usage": {"input_tokens": len(str(prompt).split()), "output_tokens": 1056, "total_tokens": 1100},
    }
    return "ok", json_reply(answer, fault=fault, headers={"openai-processing-ms": "1"})
