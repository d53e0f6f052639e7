"""Gemini's batch mode over HTTP (no Django): inline generateContent requests with keys, a batch
operation to poll, and its inlined responses."""

from __future__ import annotations

from collections.abc import Sequence

from generation.batches.openai import BatchState, ItemOutcome
from generation.providers.base import ImageRequest, ImageResult, SafetyError, TransientError
from generation.providers.gemini import GeminiProvider, _first_inline_image
from generation.providers.http import decode_base64, require_json

STATES = {
    "BATCH_STATE_SUCCEEDED": "completed",
    "BATCH_STATE_EXPIRED": "expired",
    "BATCH_STATE_CANCELLED": "cancelled",
    "BATCH_STATE_FAILED": "failed",
}


class GeminiBatches:
    def __init__(self, provider: GeminiProvider) -> None:
        self.provider = provider

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.provider._api_key}

    async def _call(self, method: str, path: str, **kwargs) -> dict:
        response = await self.provider._send(
            method, f"{self.provider.base_url}/{path}", headers=self._headers(), **kwargs
        )
        if response.status_code != 200:
            raise self.provider._error(response)
        return require_json(response, "Gemini")

    async def submit(self, items: Sequence[tuple[str, ImageRequest]]) -> str:
        model = self.provider.content_model(items[0][1])
        requests = [
            {"request": self.provider.content_body(request), "metadata": {"key": key}}
            for key, request in items
        ]
        body = {
            "batch": {"display_name": "scene-studio", "input_config": {"requests": {"requests": requests}}}
        }
        answer = await self._call("POST", f"models/{model}:batchGenerateContent", json=body)
        return str(answer["name"])

    async def poll(self, batch_id: str) -> BatchState:
        answer = await self._call("GET", batch_id)
        state = str((answer.get("metadata") or {}).get("state") or "")
        status = STATES.get(state, "in_progress")
        if status == "in_progress":
            return BatchState(status)
        inlined = ((answer.get("response") or {}).get("inlinedResponses") or {}).get("inlinedResponses") or []
        return BatchState(status, [self._outcome(item) for item in inlined if isinstance(item, dict)])

    async def cancel(self, batch_id: str) -> None:
        await self._call("POST", f"{batch_id}:cancel")

    def _outcome(self, item: dict) -> ItemOutcome:
        key = str((item.get("metadata") or {}).get("key"))
        if "error" in item:
            message = str((item["error"] or {}).get("message") or "failed in the batch")
            return ItemOutcome(key, error=TransientError(f"Gemini batch item failed: {message}"))
        answer = item.get("response") or {}
        try:
            inline = _first_inline_image(answer)
        except SafetyError as error:
            return ItemOutcome(key, error=error)
        except Exception as error:  # a malformed answer: the item failed, the batch did not
            return ItemOutcome(key, error=TransientError(f"Gemini batch item unreadable: {error}"))
        image = decode_base64(inline.get("data"), "Gemini")
        usage = answer.get("usageMetadata")
        meta = {"usage": usage} if isinstance(usage, dict) else {}
        model = self.provider.content_model(ImageRequest(prompt=""))
        return ItemOutcome(key, result=ImageResult(image=image, model=model, meta=meta))
