from __future__ import annotations

import dataclasses

import pytest

from generation.providers.a1111 import A1111Provider
from generation.providers.base import Capabilities, ImageRequest
from generation.providers.gemini import GeminiProvider
from generation.providers.openai import OpenAIProvider
from generation.providers.sketch import SketchProvider
from tests.providers.test_a1111 import provider


def test_each_provider_says_what_it_honours():
    assert OpenAIProvider.CAPABILITIES.seed is False and OpenAIProvider.CAPABILITIES.negative_prompt is False
    assert (
        A1111Provider.CAPABILITIES.negative_prompt is True and A1111Provider.CAPABILITIES.max_references == 0
    )
    assert GeminiProvider.CAPABILITIES.max_references == 3
    assert SketchProvider().capabilities == Capabilities()


def test_capabilities_are_frozen_and_follow_an_instances_reference_limit():
    sketch = SketchProvider()
    with pytest.raises(dataclasses.FrozenInstanceError):
        sketch.capabilities.seed = False  # type: ignore[misc]
    sketch.max_references = 2
    assert sketch.capabilities.max_references == 2


async def test_a1111_sends_the_requests_negative_prompt(fake, client):
    await provider(fake, client).generate(ImageRequest(prompt="p", negative_prompt="text, watermark"))
    assert fake.recorder.last("/sdapi/v1/txt2img").json["negative_prompt"] == "text, watermark"


async def test_a1111_sends_no_negative_prompt_when_there_is_none(fake, client):
    await provider(fake, client).generate(ImageRequest(prompt="p"))
    assert "negative_prompt" not in fake.recorder.last("/sdapi/v1/txt2img").json
