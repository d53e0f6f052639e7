"""Provider error text shown to members never carries a credential, in any of its usual forms."""

from __future__ import annotations

import base64

import httpx
import pytest

from generation.providers.a1111 import A1111Provider
from generation.providers.base import ProviderError, TransientError
from generation.providers.gemini import GeminiProvider
from generation.providers.http import short
from generation.providers.openai import OpenAIProvider

KEY = "sk-proj-Abc123Def456Ghi789Jkl"
GOOGLE_KEY = "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv"
USER, PASSWORD = "artist", "hunter2-pass"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"Invalid key {KEY} for this org",
        "Authorization: Bearer tok_9f8e7d6c5b4a3 was rejected",
        f"Authorization: Basic {BASIC}",
        f"could not reach https://{USER}:{PASSWORD}@sd.example.com/sdapi",
        "GET https://example.com/v1/models?key=zz-private-value-1&alt=json failed",
        "upstream said api_key=private-value-2 is wrong",
        f"Google key {GOOGLE_KEY} is not valid",
    ],
)
def test_every_credential_shape_is_masked_in_provider_errors(text: str) -> None:
    message = ProviderError(text).message
    for secret in (
        KEY,
        "tok_9f8e7d6c5b4a3",
        BASIC,
        PASSWORD,
        "zz-private-value-1",
        "private-value-2",
        GOOGLE_KEY,
    ):
        assert secret not in message
    assert "***" in message


def test_the_exact_configured_key_is_masked_in_any_encoding(client) -> None:
    odd_key = "plainkey-with-no-known-shape"
    OpenAIProvider(api_key=odd_key, client=client)
    for form in (odd_key, base64.b64encode(odd_key.encode()).decode(), "plainkey-with-no-known-shape"):
        assert odd_key not in short(f"the server echoed {form} back")
        assert base64.b64encode(odd_key.encode()).decode() not in ProviderError(f"echo {form}").message


def test_the_masking_keeps_the_rest_of_the_message() -> None:
    assert ProviderError("The image service failed: out of memory").message == (
        "The image service failed: out of memory"
    )
    assert short(f"bad key {KEY} (code 7)") == "bad key *** (code 7)"


async def test_openai_errors_echoing_the_key_or_the_bearer_header_are_scrubbed(client) -> None:
    openai = OpenAIProvider(api_key="opaque-openai-credential", client=client)
    body = {"error": {"message": "Key opaque-openai-credential (Bearer opaque-openai-credential) denied"}}
    error = openai._error(httpx.Response(403, json=body), None)
    assert "opaque-openai-credential" not in error.message and "Bearer ***" in error.message


async def test_gemini_errors_echoing_a_key_parameter_are_scrubbed(client) -> None:
    gemini = GeminiProvider(api_key="opaque-gemini-credential", client=client)
    body = {"error": {"message": "Bad request to /v1beta/models?key=opaque-gemini-credential"}}
    error = gemini._error(httpx.Response(400, json=body))
    assert "opaque-gemini-credential" not in error.message


async def test_a1111_errors_echoing_basic_auth_are_scrubbed(client) -> None:
    a1111 = A1111Provider(username=USER, password=PASSWORD, client=client)
    body = {"detail": f"auth header was Basic {BASIC}, user {USER}:{PASSWORD}"}
    error = a1111._error(httpx.Response(422, json=body))
    assert BASIC not in error.message and PASSWORD not in error.message
    error = a1111._error(httpx.Response(500, json={"error": "boom", "errors": f"creds {BASIC}"}))
    assert isinstance(error, TransientError) and BASIC not in error.message
