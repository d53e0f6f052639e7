"""OpenAI's Batch API over HTTP (no Django): a JSONL file of images/generations or images/edits bodies
with custom_ids, uploaded to /v1/files, a batch on /v1/batches, polled, then its output and error files."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from generation.providers.base import ImageRequest, ImageResult, ProviderError, SafetyError, TransientError
from generation.providers.http import decode_base64, require_json
from generation.providers.openai import OpenAIProvider

TERMINAL = {"completed", "expired", "cancelled", "failed"}


@dataclass(frozen=True)
class ItemOutcome:
    custom_id: str
    result: ImageResult | None = None
    error: ProviderError | None = None


@dataclass(frozen=True)
class BatchState:
    status: str
    outcomes: list[ItemOutcome] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


class OpenAIBatches:
    """Batch calls with an OpenAIProvider's key, base URL, model, quality and HTTP client."""

    def __init__(self, provider: OpenAIProvider) -> None:
        self.provider = provider

    def _url(self, path: str) -> str:
        return f"{self.provider.base_url}{path}"

    async def submit(self, items: Sequence[tuple[str, ImageRequest]]) -> str:
        """One batch for the items (edits when any has references); returns the provider's batch id."""
        edits = any(request.references for _, request in items)
        endpoint = "/v1/images/edits" if edits else "/v1/images/generations"
        lines = [
            json.dumps(
                {"custom_id": custom_id, "method": "POST", "url": endpoint, "body": self._body(request)}
            )
            for custom_id, request in items
        ]
        upload = await self.provider._send(
            "POST",
            self._url("/v1/files"),
            headers=self.provider._headers(),
            data={"purpose": "batch"},
            files=[("file", ("batch.jsonl", ("\n".join(lines) + "\n").encode(), "application/jsonl"))],
        )
        file_id = self._ok(upload)["id"]
        created = await self.provider._send(
            "POST",
            self._url("/v1/batches"),
            headers=self.provider._headers(),
            json={"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"},
        )
        return str(self._ok(created)["id"])

    def _body(self, request: ImageRequest) -> dict:
        model = request.model or self.provider.model
        body = self.provider._generation_body(request, model)
        if request.references:
            body["images"] = [
                {"image_url": f"data:{ref.mime};base64,{base64.b64encode(ref.image).decode()}"}
                for ref in request.references[: self.provider.max_references]
            ]
        return body

    async def poll(self, batch_id: str) -> BatchState:
        """The batch's status; once it ended, every item's outcome from its output and error files."""
        answer = await self.provider._send(
            "GET", self._url(f"/v1/batches/{batch_id}"), headers=self.provider._headers()
        )
        batch = self._ok(answer)
        status = str(batch.get("status"))
        if status not in TERMINAL:
            return BatchState(status)
        outcomes: list[ItemOutcome] = []
        for key in ("output_file_id", "error_file_id"):
            if batch.get(key):
                outcomes += [self._outcome(line) for line in await self._lines(batch[key])]
        return BatchState(status, outcomes)

    async def cancel(self, batch_id: str) -> None:
        await self.provider._send(
            "POST", self._url(f"/v1/batches/{batch_id}/cancel"), headers=self.provider._headers()
        )

    async def _lines(self, file_id: str) -> list[dict]:
        answer = await self.provider._send(
            "GET", self._url(f"/v1/files/{file_id}/content"), headers=self.provider._headers()
        )
        if answer.status_code != 200:
            raise self.provider._error(answer, None)
        return [json.loads(line) for line in answer.text.splitlines() if line.strip()]

    def _ok(self, response) -> dict:
        if response.status_code != 200:
            raise self.provider._error(response, None)
        return require_json(response, "OpenAI")

    def _outcome(self, line: dict) -> ItemOutcome:
        custom_id = str(line.get("custom_id"))
        response = line.get("response") or {}
        body = response.get("body") or {}
        if response.get("status_code") == 200:
            data = body.get("data") or [{}]
            image = decode_base64(data[0].get("b64_json"), "OpenAI")
            meta = {"usage": body["usage"]} if isinstance(body.get("usage"), dict) else {}
            return ItemOutcome(
                custom_id, result=ImageResult(image=image, model=self.provider.model, meta=meta)
            )
        error = body.get("error") or line.get("error") or {}
        message = str(error.get("message") or "failed in the batch")
        code = str(error.get("code") or "")
        if code in ("content_policy_violation", "moderation_blocked"):
            return ItemOutcome(custom_id, error=SafetyError(f"OpenAI rejected the prompt: {message}"))
        return ItemOutcome(custom_id, error=TransientError(f"OpenAI batch item failed: {message} ({code})"))
