"""A fake image-provider server speaking the OpenAI, Gemini, ComfyUI and A1111 wire formats on loopback.

    async with FakeProviderServer(FakeConfig(rpm=20)) as server:      # in the test's event loop
        provider = OpenAIProvider(api_key="k", base_url=server.base_url("openai"))
    with FakeProviderServer(FakeConfig(time_scale=0.01)) as server:  # in a background thread
        ...

No Django here: benchmarks and tests import it directly.
"""

from __future__ import annotations

from generation.fakeprovider.config import FAULTS, FakeConfig, Latency
from generation.fakeprovider.images import counter_of
from generation.fakeprovider.recorder import FilePart, RecordedRequest, Recorder
from generation.fakeprovider.server import FakeProviderServer

__all__ = [
    "FAULTS",
    "FakeConfig",
    "FakeProviderServer",
    "FilePart",
    "Latency",
    "RecordedRequest",
    "Recorder",
    "counter_of",
]
