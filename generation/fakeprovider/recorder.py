"""Every request the fake server received, so tests assert on what the client really sent."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FilePart:
    """One file part of a multipart body (the bytes are kept for uploads the server must serve back)."""

    field: str
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def summary(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256[:16],
        }


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)  # multipart text fields
    files: list[FilePart] = field(default_factory=list)
    provider: str = ""  # "openai", "gemini", "comfyui", "a1111"
    received: float = field(default_factory=time.time)
    status: int | None = None  # None while in flight; 0 when the server dropped the connection
    outcome: str = ""  # "ok", "quota", "daily_quota", "concurrency", "auth", "safety", "invalid" or a fault

    @property
    def image_parts(self) -> int:
        """Multipart image parts (OpenAI's image[] and ComfyUI's image)."""
        return sum(1 for part in self.files if part.field in ("image[]", "image"))

    @property
    def inline_data_parts(self) -> int:
        """Gemini inline_data / inlineData parts in contents[].parts[]."""
        contents = self.json.get("contents") if isinstance(self.json, dict) else None
        return sum(
            1
            for content in contents or []
            for part in (content.get("parts") or [] if isinstance(content, dict) else [])
            if isinstance(part, dict) and ("inline_data" in part or "inlineData" in part)
        )

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "json": _trim(self.json),
            "form": self.form,
            "files": [part.summary() for part in self.files],
            "image_parts": self.image_parts,
            "inline_data_parts": self.inline_data_parts,
            "provider": self.provider,
            "received": self.received,
            "status": self.status,
            "outcome": self.outcome,
        }


class Recorder:
    """Thread-safe: the server may run in a background thread while a test reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []

    def add(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def find(self, path_contains: str = "", *, method: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if path_contains in r.path and (method is None or r.method == method.upper())
        ]

    def last(self, path_contains: str = "") -> RecordedRequest:
        found = self.find(path_contains)
        if not found:
            raise LookupError(f"no recorded request with {path_contains!r} in its path")
        return found[-1]


def _trim(value: Any, limit: int = 400) -> Any:
    # Base64 images would make GET /_fake/requests unreadable; keep their length instead.
    if isinstance(value, str) and len(value) > limit:
        return f"<{len(value)} chars>"
    if isinstance(value, dict):
        return {key: _trim(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [_trim(item, limit) for item in value]
    return value
