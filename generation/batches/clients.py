"""Which providers can take a run as a batch, and the client that speaks their batch API."""

from __future__ import annotations

from generation.batches.gemini import GeminiBatches
from generation.batches.openai import OpenAIBatches
from generation.providers.base import Provider
from generation.providers.gemini import GeminiProvider
from generation.providers.openai import OpenAIProvider


def batch_client_for(provider: Provider) -> OpenAIBatches | GeminiBatches | None:
    if not provider.capabilities.batch:  # the capability record is the one place that says so
        return None
    if isinstance(provider, OpenAIProvider):
        return OpenAIBatches(provider)
    if isinstance(provider, GeminiProvider):
        return GeminiBatches(provider)
    return None


def supports_batch(provider: Provider) -> bool:
    return batch_client_for(provider) is not None
