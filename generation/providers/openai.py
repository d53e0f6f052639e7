"""OpenAI Images API (gpt-image-1): generations without references, edits with up to 16 references."""

from __future__ import annotations

import httpx

from generation.providers import register
from generation.providers.base import (
    AuthError,
    Capabilities,
    DailyQuotaError,
    ImageRequest,
    ImageResult,
    InvalidRequestError,
    ProviderError,
    QuotaError,
    RateLimit,
    SafetyError,
)
from generation.providers.http import (
    HttpProvider,
    credential_id,
    error_for_status,
    image_from_base64,
    json_body,
    parse_rate_limit,
    quota_wait,
    require_json,
    short,
    wait_text,
)
from generation.providers.redact import remember_secrets

DEFAULT_BASE_URL = "https://api.openai.com"
DEFAULT_MODEL = "gpt-image-1"
_GPT_IMAGE_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}
_SAFETY_CODES = {"moderation_blocked", "content_policy_violation"}
_BILLING_CODES = {"insufficient_quota", "billing_hard_limit_reached"}
# Requests-per-day (RPD) limits: "Rate limit reached ... on requests per day (RPD)", or a gateway's code.
_DAILY_CODES = {"daily_limit_reached", "rate_limit_exceeded_daily"}


@register("openai")
class OpenAIProvider(HttpProvider):
    decodes_images = True  # every answer goes through check_image
    name = "openai"
    label = "OpenAI"
    max_references = 16
    # The Images API has no seed and no negative prompt; these are its sizes.
    CAPABILITIES = Capabilities(seed=False, sizes=("1024x1024", "1536x1024", "1024x1536"), batch=True)

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        quality: str = "medium",
        client: httpx.AsyncClient | None = None,
        credential: str = "",
    ) -> None:
        super().__init__(
            base_url=base_url,
            model=model,
            credential=credential or credential_id("openai", api_key),
            client=client,
        )
        self._api_key = api_key
        remember_secrets(api_key)
        self.quality = quality

    async def generate(self, request: ImageRequest) -> ImageResult:
        model = request.model or self.model
        if request.references:
            response = await self._send(
                "POST",
                f"{self.base_url}/v1/images/edits",
                headers=self._headers(),
                data=self._edit_fields(request, model),
                files=self._edit_files(request),
            )
        else:
            response = await self._send(
                "POST",
                f"{self.base_url}/v1/images/generations",
                headers=self._headers(),
                json=self._generation_body(request, model),
            )
        rate_limit = parse_rate_limit(response.headers)
        if response.status_code != 200:
            raise self._error(response, rate_limit)
        body = require_json(response, self.label)
        data = body.get("data")
        first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        image, mime = await image_from_base64(first.get("b64_json"), self.label)
        return ImageResult(
            image=image, mime=mime, model=model, rate_limit=rate_limit, meta=_meta(body, first)
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def _generation_body(self, request: ImageRequest, model: str) -> dict:
        return {
            "model": model,
            "prompt": request.prompt,
            "size": _size(request, model),
            "quality": self.quality,
            "output_format": "png",
            "n": 1,
        }

    def _edit_fields(self, request: ImageRequest, model: str) -> dict[str, str]:
        # Multipart form fields are strings; the API parses n back into a number.
        body = self._generation_body(request, model)
        return {key: str(value) for key, value in body.items()}

    def _edit_files(self, request: ImageRequest) -> list[tuple[str, tuple[str, bytes, str]]]:
        references = request.references[: self.max_references]
        return [
            ("image[]", (_filename(index, ref.mime), ref.image, ref.mime))
            for index, ref in enumerate(references, start=1)
        ]

    def _error(self, response: httpx.Response, rate_limit: RateLimit | None) -> ProviderError:
        status = response.status_code
        body = json_body(response)
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or "")
        kind = str(error.get("type") or "")
        message = str(error.get("message") or "")
        if code in _BILLING_CODES or kind in _BILLING_CODES:
            # Spent credit comes as 429 insufficient_quota or, for images, 400 billing_hard_limit_reached.
            return DailyQuotaError(
                "OpenAI billing quota reached (check the plan and billing details)",
                http_status=status,
                retry_after=None,
                rate_limit=rate_limit,
                resets=False,
            )
        if status == 429 and (code in _DAILY_CODES or "per day" in message.lower()):
            reset = rate_limit.reset_seconds if rate_limit else None
            return DailyQuotaError(
                f"OpenAI daily request limit reached ({wait_text(reset)})",
                retry_after=reset,
                rate_limit=rate_limit,
            )
        if status == 429:
            wait = quota_wait(response.headers, rate_limit)
            return QuotaError(
                f"OpenAI rate limit reached ({wait_text(wait)})", retry_after=wait, rate_limit=rate_limit
            )
        if status == 400 and (code in _SAFETY_CODES or "safety system" in message.lower()):
            return SafetyError("OpenAI rejected the prompt (safety system)", http_status=status)
        if status == 401:
            return AuthError("OpenAI rejected the API key", http_status=status)
        if status == 403:
            detail = short(message, 120, secrets=(self._api_key,)) or "access denied"
            return AuthError(f"OpenAI denied access: {detail}", http_status=status)
        if status in (400, 404, 413, 422) and message:
            detail = short(message, secrets=(self._api_key,))
            return InvalidRequestError(f"OpenAI rejected the request: {detail}", http_status=status)
        return error_for_status(response, self.label)


def _size(request: ImageRequest, model: str) -> str:
    """gpt-image models take three sizes; pick the one with the request's orientation."""
    if not model.startswith("gpt-image") or request.size in _GPT_IMAGE_SIZES:
        return request.size
    try:
        width, height = (int(part) for part in request.size.lower().split("x"))
    except ValueError:
        return "auto"
    if width > height:
        return "1536x1024"
    return "1024x1536" if height > width else "1024x1024"


def _filename(index: int, mime: str) -> str:
    extension = {"image/jpeg": "jpg", "image/webp": "webp"}.get(mime, "png")
    return f"reference-{index}.{extension}"


def _meta(body: dict, first: dict) -> dict:
    meta: dict = {}
    if isinstance(body.get("usage"), dict):
        meta["usage"] = body["usage"]
    if first.get("revised_prompt"):
        meta["revised_prompt"] = first["revised_prompt"]
    return meta
