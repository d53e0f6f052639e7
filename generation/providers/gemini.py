"""Google Gemini API: Imagen `:predict` for plain prompts, an image model's `:generateContent` when
references must be sent along (Imagen on this API takes no input images)."""

from __future__ import annotations

import base64
import math

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
    SafetyError,
    TransientError,
)
from generation.providers.http import (
    HttpProvider,
    credential_id,
    error_for_status,
    image_from_base64,
    json_body,
    parse_duration,
    parse_retry_after,
    require_json,
    short,
    wait_text,
)
from generation.providers.redact import remember_secrets

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
DEFAULT_MODEL = "imagen-4.0-generate-001"
DEFAULT_REFERENCE_MODEL = "gemini-2.5-flash-image"
_IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
_GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_SAFETY_FINISH = {
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "IMAGE_PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
}
_RPC = "type.googleapis.com/google.rpc."


@register("gemini")
class GeminiProvider(HttpProvider):
    decodes_images = True  # every answer goes through check_image
    name = "gemini"
    label = "Gemini"
    max_references = 3  # gemini-2.5-flash-image works best with up to three input images
    CAPABILITIES = Capabilities(seed=True, max_references=3, batch=True)

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        reference_model: str = DEFAULT_REFERENCE_MODEL,
        max_references: int | None = None,
        client: httpx.AsyncClient | None = None,
        credential: str = "",
    ) -> None:
        super().__init__(
            base_url=base_url,
            model=model,
            credential=credential or credential_id("gemini", api_key),
            client=client,
        )
        self._api_key = api_key
        remember_secrets(api_key)
        self.reference_model = reference_model
        if max_references is not None:
            self.max_references = max_references

    async def generate(self, request: ImageRequest) -> ImageResult:
        model = request.model or self.model
        if request.references or not model.startswith("imagen"):
            if model.startswith("imagen"):
                model = self.reference_model
            return await self._generate_content(request, model)
        return await self._predict(request, model)

    async def _predict(self, request: ImageRequest, model: str) -> ImageResult:
        body = {
            "instances": [{"prompt": request.prompt}],
            "parameters": {"sampleCount": 1, "aspectRatio": nearest_ratio(request, _IMAGEN_RATIOS)},
        }
        answer = await self._post(f"models/{model}:predict", body)
        predictions = [p for p in answer.get("predictions") or [] if isinstance(p, dict)]
        image = next((p for p in predictions if p.get("bytesBase64Encoded")), None)
        if image is None:
            # Imagen drops filtered images from the answer instead of failing the call.
            raise SafetyError("Gemini filtered the image (safety filter)")
        data, mime = await image_from_base64(image["bytesBase64Encoded"], self.label)
        return ImageResult(image=data, mime=mime, model=model)

    async def _generate_content(self, request: ImageRequest, model: str) -> ImageResult:
        answer = await self._post(f"models/{model}:generateContent", self.content_body(request))
        inline = _first_inline_image(answer)
        data, mime = await image_from_base64(inline.get("data"), self.label)
        return ImageResult(image=data, mime=mime, seed=request.seed, model=model)

    def content_model(self, request: ImageRequest) -> str:
        """The generateContent model for a request (Imagen has no generateContent: its sibling)."""
        model = request.model or self.model
        return self.reference_model if model.startswith("imagen") else model

    def content_body(self, request: ImageRequest) -> dict:
        """A generateContent request body (also one item of a batch)."""
        parts: list[dict] = [{"text": request.prompt}]
        for ref in request.references[: self.max_references]:
            data = base64.b64encode(ref.image).decode("ascii")
            parts.append({"inline_data": {"mime_type": ref.mime, "data": data}})
        config: dict = {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": nearest_ratio(request, _GEMINI_RATIOS)},
        }
        if request.seed is not None:
            config["seed"] = request.seed
        return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}

    async def _post(self, method: str, body: dict) -> dict:
        headers = {"x-goog-api-key": self._api_key}
        response = await self._send("POST", f"{self.base_url}/{method}", headers=headers, json=body)
        if response.status_code != 200:
            raise self._error(response)
        return require_json(response, self.label)

    def _error(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        body = json_body(response)
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        details = [d for d in error.get("details") or [] if isinstance(d, dict)]
        message = short(error.get("message"), secrets=(self._api_key,))
        if status == 429:
            return _quota_error(response, details)
        if _reason(details) == "API_KEY_INVALID" or status == 401:
            return AuthError("Gemini rejected the API key", http_status=status)
        if status == 403:
            return AuthError(f"Gemini denied access: {message or 'permission denied'}", http_status=status)
        if status in (400, 404) and message:
            return InvalidRequestError(f"Gemini rejected the request: {message}", http_status=status)
        if status == 503:
            return TransientError("Gemini is overloaded (503)", http_status=status)
        return error_for_status(response, self.label)


def _quota_error(response: httpx.Response, details: list[dict]) -> QuotaError:
    retry_after = parse_retry_after(response.headers)
    daily = False
    for detail in details:
        kind = detail.get("@type", "")
        if kind == _RPC + "RetryInfo":
            retry_after = parse_duration(detail.get("retryDelay")) or retry_after
        elif kind == _RPC + "QuotaFailure":
            violations = [v for v in detail.get("violations") or [] if isinstance(v, dict)]
            daily = daily or any("PerDay" in str(v.get("quotaId", "")) for v in violations)
    if daily:
        # A RetryInfo may come along, but a spent per-day quota does not come back in seconds.
        return DailyQuotaError("Gemini daily quota used up (try again tomorrow)", retry_after=None)
    return QuotaError(f"Gemini quota exceeded ({wait_text(retry_after)})", retry_after=retry_after)


def _reason(details: list[dict]) -> str:
    for detail in details:
        if detail.get("@type") == _RPC + "ErrorInfo" or "reason" in detail:
            return str(detail.get("reason") or "")
    return ""


def _first_inline_image(answer: dict) -> dict:
    """The first inline image part; a safety block or an image-less answer raises."""
    block = (answer.get("promptFeedback") or {}).get("blockReason")
    if block:
        raise SafetyError(f"Gemini rejected the prompt (safety filter: {block})")
    candidates = [c for c in answer.get("candidates") or [] if isinstance(c, dict)]
    for candidate in candidates:
        for part in (candidate.get("content") or {}).get("parts") or []:
            inline = _inline_image(part)
            if inline is not None:
                return inline
    reasons = {str(c.get("finishReason") or "") for c in candidates}
    if reasons & _SAFETY_FINISH:
        raise SafetyError("Gemini rejected the prompt (safety filter)")
    raise TransientError("Gemini answered without an image")


def _inline_image(part: object) -> dict | None:
    # The API answers in camelCase; some proxies and older SDK dumps use snake_case.
    if not isinstance(part, dict):
        return None
    inline = part.get("inlineData") or part.get("inline_data")
    if not isinstance(inline, dict):
        return None
    mime = str(inline.get("mimeType") or inline.get("mime_type") or "image/")
    return inline if mime.startswith("image/") else None


def nearest_ratio(request: ImageRequest, supported: tuple[str, ...]) -> str:
    """The supported aspect ratio closest to the request's (compared on a log scale)."""
    target = _ratio_value(request.aspect_ratio) or _ratio_value(request.size.replace("x", ":")) or 1.0
    return min(supported, key=lambda ratio: abs(math.log(_ratio_value(ratio) / target)))


def _ratio_value(text: str) -> float | None:
    try:
        width, height = (float(part) for part in text.split(":"))
    except ValueError:
        return None
    return width / height if width > 0 and height > 0 else None
