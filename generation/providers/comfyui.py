"""ComfyUI, run by the user: their API-format workflow with {{prompt}}, {{seed}} and {{reference}}
placeholders, queued through /prompt and collected from /history and /view.

Placeholders may sit anywhere in node inputs. "{{reference}}" (or "{{reference_1}}") is the first
reference, "{{reference_2}}" the second, and so on; the workflow decides how many references it takes.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import secrets
import time
import uuid
from typing import Any

import httpx

from generation.providers import register
from generation.providers.base import (
    ImageRequest,
    ImageResult,
    InvalidRequestError,
    Reference,
    TransientError,
)
from generation.providers.http import (
    HttpProvider,
    credential_id,
    error_for_status,
    image_from_bytes,
    json_body,
    require_json,
    short,
)
from generation.providers.redact import remember_secrets

DEFAULT_BASE_URL = "http://127.0.0.1:8188"
_REFERENCE = re.compile(r"\{\{reference(?:_(\d+))?\}\}")
_EXTENSIONS = {"image/jpeg": "jpg", "image/webp": "webp"}


@register("comfyui")
class ComfyUIProvider(HttpProvider):
    decodes_images = True  # every answer goes through check_image
    name = "comfyui"
    label = "ComfyUI"

    def __init__(
        self,
        *,
        workflow: dict | str,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str = "",
        model: str = "",
        client: httpx.AsyncClient | None = None,
        credential: str = "",
        poll_interval: float = 0.5,
        max_wait: float = 900.0,
    ) -> None:
        # A local server has no per-key quota; the server itself is the shared resource.
        secret = api_key or base_url.rstrip("/")
        super().__init__(
            base_url=base_url,
            model=model,
            credential=credential or credential_id("comfyui", secret),
            client=client,
        )
        self.workflow = _load_workflow(workflow)
        self.max_references = _reference_slots(self.workflow)
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self._api_key = api_key
        remember_secrets(api_key)
        self._client_id = uuid.uuid4().hex
        self._uploads: dict[str, str] = {}  # Reference.key -> name ComfyUI knows the image by
        self._upload_locks: dict[str, asyncio.Lock] = {}

    async def prepare_reference(self, reference: Reference) -> Reference:
        await self._uploaded_name(reference)
        return reference

    async def generate(self, request: ImageRequest) -> ImageResult:
        if len(request.references) < self.max_references:
            raise InvalidRequestError(
                f"This ComfyUI workflow needs {self.max_references} reference image(s); "
                f"the scene has {len(request.references)}"
            )
        names = [await self._uploaded_name(ref) for ref in request.references[: self.max_references]]
        seed = request.seed if request.seed is not None else secrets.randbelow(2**32)
        workflow = fill_workflow(self.workflow, prompt=request.prompt, seed=seed, references=names)
        prompt_id = await self._queue(workflow)
        output = _first_output_image(await self._wait_for(prompt_id))
        image = await self._download(output)
        mime = await image_from_bytes(image, self.label)
        return ImageResult(image=image, mime=mime, seed=seed, model=self.model, meta={"prompt_id": prompt_id})

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    async def _uploaded_name(self, reference: Reference) -> str:
        # Concurrent scenes share characters: the lock makes the first one upload and the rest reuse it.
        key = reference.key
        lock = self._upload_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._uploads:
                self._uploads[key] = await self._upload(reference)
        return self._uploads[key]

    async def _upload(self, reference: Reference) -> str:
        # Content-addressed file names make overwrite safe and keep ComfyUI from renaming duplicates.
        filename = f"scenestudio-{reference.key}.{_EXTENSIONS.get(reference.mime, 'png')}"
        response = await self._send(
            "POST",
            f"{self.base_url}/upload/image",
            headers=self._headers(),
            files={"image": (filename, reference.image, reference.mime)},
            data={"overwrite": "true", "type": "input"},
        )
        if response.status_code != 200:
            raise error_for_status(response, self.label)
        body = require_json(response, self.label)
        name, subfolder = str(body.get("name") or ""), str(body.get("subfolder") or "")
        if not name:
            raise TransientError("ComfyUI did not confirm the reference upload")
        return f"{subfolder}/{name}" if subfolder else name

    async def _queue(self, workflow: dict) -> str:
        response = await self._send(
            "POST",
            f"{self.base_url}/prompt",
            headers=self._headers(),
            json={"prompt": workflow, "client_id": self._client_id},
        )
        body = json_body(response)
        # A 200 with node_errors still queued the valid outputs; only a refused prompt is the user's to fix.
        queued = isinstance(body, dict) and bool(body.get("prompt_id"))
        if response.status_code == 400 or (isinstance(body, dict) and body.get("node_errors") and not queued):
            raise InvalidRequestError(
                f"ComfyUI rejected the workflow: {_workflow_error(body)}", http_status=400
            )
        if response.status_code != 200:
            raise error_for_status(response, self.label)
        prompt_id = require_json(response, self.label).get("prompt_id")
        if not prompt_id:
            raise TransientError("ComfyUI did not queue the workflow")
        return str(prompt_id)

    async def _wait_for(self, prompt_id: str) -> dict:
        deadline = time.monotonic() + self.max_wait
        while True:
            response = await self._send(
                "GET", f"{self.base_url}/history/{prompt_id}", headers=self._headers()
            )
            if response.status_code != 200:
                raise error_for_status(response, self.label)
            entry = require_json(response, self.label).get(prompt_id)
            if isinstance(entry, dict) and _finished(entry):
                return entry
            if time.monotonic() >= deadline:
                raise TransientError("ComfyUI did not finish the image in time")
            await asyncio.sleep(self.poll_interval)

    async def _download(self, output: dict) -> bytes:
        params = {key: str(output.get(key) or "") for key in ("filename", "subfolder", "type")}
        response = await self._send("GET", f"{self.base_url}/view", params=params, headers=self._headers())
        if response.status_code != 200:
            raise error_for_status(response, self.label)
        return response.content


def _load_workflow(workflow: dict | str) -> dict:
    if isinstance(workflow, str):
        try:
            workflow = json.loads(workflow)
        except ValueError as exc:
            raise InvalidRequestError("The ComfyUI workflow is not valid JSON") from exc
    if not isinstance(workflow, dict) or not workflow:
        raise InvalidRequestError("The ComfyUI workflow must be an API-format JSON object of nodes")
    if "nodes" in workflow and "links" in workflow:
        raise InvalidRequestError("Export the ComfyUI workflow in API format (Save (API))")
    return workflow


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _reference_slots(workflow: dict) -> int:
    slots = [int(m.group(1) or 1) for text in _strings(workflow) for m in _REFERENCE.finditer(text)]
    return max(slots, default=0)


def fill_workflow(workflow: dict, *, prompt: str, seed: int, references: list[str]) -> dict:
    """A copy of the workflow with placeholders replaced; a value that is exactly {{seed}} becomes an int."""

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        if isinstance(value, list):
            return [fill(item) for item in value]
        if not isinstance(value, str):
            return value
        if value == "{{seed}}":
            return seed
        value = _REFERENCE.sub(lambda m: references[int(m.group(1) or 1) - 1], value)
        # Seed before prompt, so a prompt that happens to contain "{{seed}}" is left as written.
        return value.replace("{{seed}}", str(seed)).replace("{{prompt}}", prompt)

    return fill(copy.deepcopy(workflow))


def _finished(entry: dict) -> bool:
    status = entry.get("status")
    if isinstance(status, dict) and status.get("status_str") == "error":
        raise TransientError(f"ComfyUI failed while running the workflow{_execution_error(status)}")
    return bool(entry.get("outputs")) or (isinstance(status, dict) and bool(status.get("completed")))


def _execution_error(status: dict) -> str:
    for message in status.get("messages") or []:
        if isinstance(message, list) and len(message) == 2 and message[0] == "execution_error":
            detail = message[1] if isinstance(message[1], dict) else {}
            text = short(detail.get("exception_message"), 120)
            return f": {text}" if text else ""
    return ""


def _first_output_image(entry: dict) -> dict:
    """The first saved image; previews (type "temp") only if the workflow saves nothing."""
    images = [
        image
        for output in (entry.get("outputs") or {}).values()
        if isinstance(output, dict)
        for image in output.get("images") or []
        if isinstance(image, dict) and image.get("filename")
    ]
    saved = [image for image in images if image.get("type") == "output"]
    if not (saved or images):
        raise InvalidRequestError("The ComfyUI workflow produced no image (add a Save Image node)")
    return (saved or images)[0]


def _workflow_error(body: Any) -> str:
    if not isinstance(body, dict):
        return "invalid workflow"
    for node_id, node in (body.get("node_errors") or {}).items():
        node = node if isinstance(node, dict) else {}
        errors = [error for error in node.get("errors") or [] if isinstance(error, dict)] or [{}]
        detail = errors[0].get("details") or errors[0].get("message") or "invalid input"
        return short(f"node {node_id} ({node.get('class_type', '?')}): {detail}")
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    return short(message or "invalid workflow")
