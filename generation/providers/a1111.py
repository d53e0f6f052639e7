"""AUTOMATIC1111 Stable Diffusion web UI (and API-compatible forks such as Forge), txt2img only."""

from __future__ import annotations

import json

import httpx

from generation.providers import register
from generation.providers.base import (
    AuthError,
    ImageRequest,
    ImageResult,
    InvalidRequestError,
    ProviderError,
    TransientError,
)
from generation.providers.http import (
    HttpProvider,
    credential_id,
    error_for_status,
    image_from_base64,
    json_body,
    require_json,
    short,
)
from generation.providers.redact import remember_secrets

DEFAULT_BASE_URL = "http://127.0.0.1:7860"


@register("a1111")
class A1111Provider(HttpProvider):
    decodes_images = True  # every answer goes through check_image
    name = "a1111"
    label = "Stable Diffusion web UI"
    max_references = 0  # txt2img takes no reference images; the engine drops them

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        username: str = "",
        password: str = "",
        model: str = "",
        steps: int = 25,
        options: dict | None = None,
        client: httpx.AsyncClient | None = None,
        credential: str = "",
    ) -> None:
        # One server is one quota; the password stays out of the id, even hashed.
        secret = f"{username}@{base_url.rstrip('/')}" if username else base_url.rstrip("/")
        super().__init__(
            base_url=base_url,
            model=model,
            credential=credential or credential_id("a1111", secret),
            client=client,
        )
        self._auth = httpx.BasicAuth(username, password) if username else None
        self._password = password
        remember_secrets(password, f"{username}:{password}" if password else "")
        self.steps = steps
        # Extra txt2img fields, sent as given: negative_prompt, cfg_scale, sampler_name...
        self.options = dict(options or {})

    async def generate(self, request: ImageRequest) -> ImageResult:
        body = self._payload(request)
        kwargs = {"auth": self._auth} if self._auth else {}
        response = await self._send("POST", f"{self.base_url}/sdapi/v1/txt2img", json=body, **kwargs)
        if response.status_code != 200:
            raise self._error(response)
        answer = require_json(response, self.label)
        images = answer.get("images")
        first = images[0] if isinstance(images, list) and images else None
        image, mime = await image_from_base64(first, self.label)
        seed = _seed(answer.get("info"), fallback=body["seed"])
        return ImageResult(image=image, mime=mime, seed=seed, model=self.model)

    def _payload(self, request: ImageRequest) -> dict:
        width, height = _dimensions(request.size)
        body = {
            "prompt": request.prompt,
            "seed": request.seed if request.seed is not None else -1,  # -1 lets the server pick
            "width": width,
            "height": height,
            "steps": self.steps,
            "batch_size": 1,
            "n_iter": 1,
            **self.options,
        }
        model = request.model or self.model
        if model:
            body["override_settings"] = {"sd_model_checkpoint": model}
        return body

    def _error(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        body = json_body(response)
        body = body if isinstance(body, dict) else {}
        if status == 401:
            return AuthError(f"{self.label} rejected the username or password", http_status=status)
        if status == 404:
            return InvalidRequestError(
                f"{self.label} has no API here (start it with --api)", http_status=status
            )
        if status == 422:
            return InvalidRequestError(
                f"{self.label} rejected the request: {_detail(body)}", http_status=status
            )
        if status >= 500 and body.get("error"):
            detail = short(body.get("errors") or body.get("error"), 120, secrets=(self._password,))
            return TransientError(f"{self.label} failed: {detail}", http_status=status)
        return error_for_status(response, self.label)


def _dimensions(size: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in size.lower().split("x"))
    except ValueError:
        return 1024, 1024
    # Stable Diffusion works in multiples of 8 pixels.
    return max(64, width // 8 * 8), max(64, height // 8 * 8)


def _seed(info: object, *, fallback: int) -> int | None:
    # "info" is a JSON document inside a string; it carries the seed the server actually used.
    try:
        seed = json.loads(info).get("seed") if isinstance(info, str) else None
    except (ValueError, AttributeError):
        seed = None
    if isinstance(seed, int):
        return seed
    return fallback if fallback >= 0 else None


def _detail(body: dict) -> str:
    detail = body.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        location = ".".join(str(part) for part in detail[0].get("loc") or [] if part != "body")
        return short(
            f"{location}: {detail[0].get('msg', 'invalid value')}" if location else detail[0].get("msg")
        )
    return short(detail or "invalid request")
