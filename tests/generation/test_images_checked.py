"""An answer is decoded whole once: by the HTTP provider that checked it, or else by the studio."""

from __future__ import annotations

import pytest
from PIL import PngImagePlugin

from generation.checked import ImagesChecked
from generation.providers.base import ImageRequest
from generation.providers.simulated import SimulatedProvider
from tests.support.spies import formats_called


class Decoding(SimulatedProvider):
    decodes_images = True


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """The formats verified (the first step of decoding a whole image; drawing one never verifies)."""
    return formats_called(monkeypatch, PngImagePlugin.PngImageFile, "verify")


@pytest.mark.parametrize(("provider", "decoded"), [(Decoding, False), (SimulatedProvider, True)])
async def test_an_answer_is_decoded_by_the_studio_only_when_its_provider_did_not(decodes, provider, decoded):
    result = await ImagesChecked(provider(latency=0)).generate(ImageRequest(prompt="A river"))
    assert result.mime == "image/png"
    assert bool(decodes) == decoded


def test_every_http_provider_decodes_its_answers():
    from generation.providers.a1111 import A1111Provider
    from generation.providers.comfyui import ComfyUIProvider
    from generation.providers.gemini import GeminiProvider
    from generation.providers.openai import OpenAIProvider

    for provider in (OpenAIProvider, GeminiProvider, A1111Provider, ComfyUIProvider):
        assert provider.decodes_images, provider.__name__
