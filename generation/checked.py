"""A provider's answer counts as an image only when its bytes are one.

Providers label their answers with a mime type, which is a claim: a proxy's error page, a truncated body
or a hostile server would otherwise be stored and served as a scene. Checked before the scheduler counts
a success, so a garbage answer is retried like any garbage body and then fails the scene with the reason;
a provider batch's items are checked the same way, each failing alone (batches/execution.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from generation.providers.base import ImageRequest, ImageResult, Provider, TransientError
from generation.providers.http import off_loop
from projects.images import NotAnImage, inspect_image

# Far above any provider's output; decoding is what costs memory, so a larger claim is refused unread.
MAX_SIDE = 8192


class ImagesChecked:
    """Wraps a provider: the same provider, except that every answer is decoded and typed by content."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def __getattr__(self, name: str) -> Any:
        return getattr(self.provider, name)

    async def generate(self, request: ImageRequest) -> ImageResult:
        result = await self.provider.generate(request)
        return await image_checked(result, decoded=self.provider.decodes_images)


async def image_checked(result: ImageResult, *, decoded: bool) -> ImageResult:
    """`result` typed by its content; TransientError when its bytes are not a whole image. `decoded`: the
    provider decoded it whole already, so the header says the rest."""
    try:
        if decoded:
            info = inspect_image(result.image, max_side=MAX_SIDE, decode=False)
        else:  # off the event loop when large: decoding one takes tens of milliseconds
            info = await off_loop(len(result.image), inspect_image, result.image, max_side=MAX_SIDE)
    except NotAnImage as exc:
        raise TransientError(f"The provider's answer is not an image we can store. {exc.message}") from None
    return dataclasses.replace(result, mime=info.format.mime, content_suffix=info.format.suffix)
