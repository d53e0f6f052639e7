from __future__ import annotations

import base64
import io
import time
from email.utils import formatdate

import pytest
from PIL import Image, ImageFile

from generation.fakeprovider.images import make_png
from generation.providers.base import TransientError
from generation.providers.http import (
    check_image,
    credential_id,
    decode_base64,
    make_client,
    parse_duration,
    parse_rate_limit,
    parse_retry_after,
    short,
    wait_text,
)
from tests.support.spies import formats_called


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5s", 0.5),
        ("13s", 13.0),
        ("7", 7.0),
    ],
)
def test_it_parses_the_duration_formats_providers_send(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "5 minutes"])
def test_it_gives_up_on_durations_it_cannot_read(text):
    assert parse_duration(text) is None


def test_retry_after_ms_wins_over_retry_after():
    assert parse_retry_after({"retry-after": "2", "retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({}) is None


def test_retry_after_may_be_an_http_date():
    assert 25 < parse_retry_after({"retry-after": formatdate(time.time() + 30, usegmt=True)}) <= 30


def test_rate_limit_headers_become_a_rate_limit():
    headers = {
        "x-ratelimit-limit-requests": "50",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "6m0s",
    }
    limit = parse_rate_limit(headers)
    assert (limit.limit_requests, limit.remaining_requests, limit.reset_seconds) == (50, 0, 360.0)
    assert parse_rate_limit({}) is None


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((128, 128), 64).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def test_images_are_checked_with_pillow():
    png, jpeg = make_png(1), _jpeg()
    assert check_image(png, "X") == "image/png"
    assert check_image(jpeg, "X") == "image/jpeg"
    for garbage in (b"", b"<html>", png[: len(png) // 2], png[:-5], png[:-13], jpeg[:-400]):
        with pytest.raises(TransientError, match="X sent a broken image"):
            check_image(garbage, "X")


def test_a_png_is_checked_by_its_checksums_and_other_formats_by_decoding(monkeypatch):
    decoded = formats_called(monkeypatch, ImageFile.ImageFile, "load")
    check_image(make_png(1, width=512, height=512), "X")
    assert decoded == []  # its pixels are never decoded: verify() read every chunk's CRC instead
    check_image(_jpeg(), "X")
    assert decoded == ["JPEG"]


def test_base64_may_be_urlsafe_or_a_data_url_but_not_garbage():
    raw = bytes(range(256))
    assert decode_base64(base64.b64encode(raw).decode(), "X") == raw
    assert decode_base64(base64.urlsafe_b64encode(raw).decode(), "X") == raw
    assert decode_base64("data:image/png;base64," + base64.b64encode(raw).decode(), "X") == raw
    with pytest.raises(TransientError, match="bad base64"):
        decode_base64("%%%", "X")
    with pytest.raises(TransientError, match="no image"):
        decode_base64(None, "X")


def test_messages_are_short_and_scrubbed():
    assert short("key sk-123 rejected", secrets=("sk-123",)) == "key *** rejected"
    assert len(short("x" * 500)) == 160
    assert (
        wait_text(0.2) == "retry in 1s"
        and wait_text(13) == "retry in 13s"
        and wait_text(None) == "retry later"
    )


def test_credential_ids_are_stable_and_not_secret():
    assert credential_id("openai", "sk-abc") == credential_id("openai", "sk-abc")
    assert "sk-abc" not in credential_id("openai", "sk-abc")


async def test_the_client_speaks_http1_with_a_long_read_timeout(fake):
    client = make_client()
    try:
        assert client.timeout.read == 90.0 and client.timeout.pool is None
        response = await client.get(f"{fake.url}/_fake/health")
        assert response.http_version == "HTTP/1.1"
    finally:
        await client.aclose()


async def test_a_small_image_is_checked_on_the_loop_and_a_large_one_in_a_thread(monkeypatch):
    import asyncio
    import io
    import os

    from PIL import Image

    from generation.providers.http import INLINE_BYTES, image_from_base64, image_from_bytes

    hops = []
    to_thread = asyncio.to_thread

    async def counted(func, *args, **kwargs):
        hops.append(func.__name__)
        return await to_thread(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    small = make_png(8)
    noise = Image.frombytes("RGB", (128, 128), os.urandom(128 * 128 * 3))
    large = io.BytesIO()
    noise.save(large, format="PNG")
    large = large.getvalue()
    assert len(small) < INLINE_BYTES < len(large)

    assert await image_from_base64(base64.b64encode(small).decode(), "Imagen") == (small, "image/png")
    assert await image_from_bytes(small, "Imagen") == "image/png"
    assert hops == []
    assert await image_from_base64(base64.b64encode(large).decode(), "Imagen") == (large, "image/png")
    assert await image_from_bytes(large, "Imagen") == "image/png"
    assert hops == ["_decode_and_check", "check_image"]
    with pytest.raises(TransientError, match="broken image"):  # small garbage fails the same way
        await image_from_bytes(b"<html>Bad gateway</html>", "Imagen")
