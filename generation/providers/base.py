"""The provider contract: one async method, typed errors, no Django.

Every provider module turns its API's answers into these errors exactly once, so the engine never
string-matches an error message.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import ClassVar

from generation.providers.redact import redact


@dataclass(frozen=True)
class Reference:
    """A character reference image sent with a scene request."""

    name: str
    image: bytes
    mime: str = "image/png"

    @property
    def key(self) -> str:
        # Content-addressed, so a provider's cached upload handle dies when the image changes.
        return hashlib.sha256(self.image).hexdigest()[:32]


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    references: tuple[Reference, ...] = ()
    seed: int | None = None
    size: str = "1536x1024"
    aspect_ratio: str = "3:2"
    model: str = ""
    label: str = ""  # "Scene 3", for logs and captions
    negative_prompt: str = ""  # sent only by providers whose capabilities say they take one


@dataclass(frozen=True)
class Capabilities:
    """What a provider honours, for pages and planners to read before a run. Frozen: extend by adding
    a field with a default, and set it in the provider's CAPABILITIES."""

    seed: bool = True  # the same seed and prompt give the same composition
    max_references: int = 16
    negative_prompt: bool = False
    sizes: tuple[str, ...] = ()  # empty: any WxH
    batch: bool = False


@dataclass(frozen=True)
class RateLimit:
    """What a provider told us about its quota (x-ratelimit-* headers and friends)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_seconds: float | None = None


@dataclass(frozen=True)
class ImageResult:
    image: bytes
    mime: str = "image/png"
    # Set only where the studio read the format in `image` (generation.checked), never from a provider's
    # label: the suffix the image is stored under. Empty until then.
    content_suffix: str = ""
    seed: int | None = None
    model: str = ""
    rate_limit: RateLimit | None = None
    meta: dict = field(default_factory=dict)


class ProviderError(Exception):
    kind: ClassVar[str] = "error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        # Members read this text: whatever built it, no credential survives into it.
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.http_status = http_status


class QuotaError(ProviderError):
    """Rate or quota limit: wait (retry_after seconds when the provider said) and send again."""

    kind = "quota"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = 429,
        retry_after: float | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status)
        self.retry_after = retry_after
        self.rate_limit = rate_limit


class DailyQuotaError(QuotaError):
    """A per-day quota is spent: waiting minutes will not help, so the run ends (the studio parks it
    until the reset). `resets` False: spent credit, which no reset brings back; `retry_after` here is
    the provider's time to the reset, when it said."""

    kind = "daily_quota"
    retryable = False

    def __init__(self, message: str, *, resets: bool = True, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.resets = resets


class TransientError(ProviderError):
    """5xx, timeout, dropped connection, garbage body: worth another attempt after a backoff."""

    kind = "transient"
    retryable = True


class SafetyError(ProviderError):
    kind = "safety"


class AuthError(ProviderError):
    kind = "auth"


class InvalidRequestError(ProviderError):
    kind = "invalid"


class Provider(abc.ABC):
    """One image API. Instances are long-lived and shared by concurrent requests."""

    name: ClassVar[str]
    max_references: ClassVar[int] = 16
    # True when generate() returns only images it decoded whole (the HTTP providers' check_image): the
    # studio then reads the format and size from the header, rather than decoding every image twice.
    decodes_images: ClassVar[bool] = False
    CAPABILITIES: ClassVar[Capabilities] = Capabilities()

    @property
    def capabilities(self) -> Capabilities:
        # max_references may be set per instance (a ComfyUI workflow's slots, a Gemini option).
        return dataclasses.replace(self.CAPABILITIES, max_references=self.max_references)

    def __init__(self, *, model: str = "", credential: str = "") -> None:
        self.model = model
        # Requests that share a credential share one quota, so the limiter is keyed by it.
        self.credential = credential or self.name

    @abc.abstractmethod
    async def generate(self, request: ImageRequest) -> ImageResult: ...

    async def aclose(self) -> None:
        return None
