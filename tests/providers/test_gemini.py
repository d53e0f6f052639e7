from __future__ import annotations

import asyncio
import base64

import pytest

from generation.fakeprovider import FakeProviderServer
from generation.providers.base import (
    AuthError,
    DailyQuotaError,
    ImageRequest,
    InvalidRequestError,
    QuotaError,
    SafetyError,
    TransientError,
)
from generation.providers.gemini import GeminiProvider
from tests.conftest import QuotaClock
from tests.providers.helpers import reference

KEY = "AIza-test-key-0123456789"


def provider(fake: FakeProviderServer, client, **options) -> GeminiProvider:
    return GeminiProvider(
        api_key=options.pop("api_key", KEY), base_url=fake.base_url("gemini"), client=client, **options
    )


async def test_it_calls_imagen_predict_without_references(fake, client):
    result = await provider(fake, client).generate(ImageRequest(prompt="A fox in snow", aspect_ratio="3:2"))

    sent = fake.recorder.last(":predict")
    assert sent.path == "/v1beta/models/imagen-4.0-generate-001:predict"
    assert sent.headers["x-goog-api-key"] == KEY
    assert "key" not in sent.query  # the key travels in a header, never in the URL
    # Imagen has no 3:2, so the nearest supported ratio is sent.
    assert sent.json == {
        "instances": [{"prompt": "A fox in snow"}],
        "parameters": {"sampleCount": 1, "aspectRatio": "4:3"},
    }
    assert result.mime == "image/png" and result.model == "imagen-4.0-generate-001"


async def test_references_go_to_generate_content_as_inline_data_parts(fake, client):
    refs = (reference(1), reference(2))
    request = ImageRequest(prompt="The two of them at the market", references=refs, seed=42)
    result = await provider(fake, client).generate(request)

    sent = fake.recorder.last(":generateContent")
    assert sent.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.inline_data_parts == 2
    parts = sent.json["contents"][0]["parts"]
    assert parts[0] == {"text": "The two of them at the market"}
    assert [base64.b64decode(p["inline_data"]["data"]) for p in parts[1:]] == [r.image for r in refs]
    assert {p["inline_data"]["mime_type"] for p in parts[1:]} == {"image/png"}
    config = sent.json["generationConfig"]
    assert "IMAGE" in config["responseModalities"]
    assert config["imageConfig"] == {"aspectRatio": "3:2"}
    assert config["seed"] == 42
    assert result.model == "gemini-2.5-flash-image" and result.seed == 42


async def test_it_sends_at_most_max_references(fake, client):
    refs = tuple(reference(n) for n in range(5))
    await provider(fake, client, max_references=4).generate(ImageRequest(prompt="p", references=refs))
    assert fake.recorder.last().inline_data_parts == 4


async def test_it_accepts_snake_case_inline_data_in_answers(fake, client):
    fake.configure(gemini_snake_case=True)
    result = await provider(fake, client).generate(ImageRequest(prompt="p", references=(reference(1),)))
    assert result.image.startswith(b"\x89PNG")


async def test_a_non_imagen_model_uses_generate_content_even_without_references(fake, client):
    await provider(fake, client, model="gemini-2.5-flash-image").generate(ImageRequest(prompt="p"))
    assert fake.recorder.last().path.endswith("gemini-2.5-flash-image:generateContent")
    assert fake.recorder.last().inline_data_parts == 0


async def test_resource_exhausted_is_a_quota_error_with_the_retry_info_delay(fake, client):
    clock = QuotaClock(fake)
    fake.configure(rpm=1, time_scale=0.005)  # a 0.3 s window
    gemini = provider(fake, client)
    await gemini.generate(ImageRequest(prompt="p"))

    with pytest.raises(QuotaError) as caught:
        await gemini.generate(ImageRequest(prompt="p"))

    assert type(caught.value) is QuotaError
    assert 0.15 < caught.value.retry_after <= 0.3
    assert caught.value.message == "Gemini quota exceeded (retry in 1s)"
    clock.advance(caught.value.retry_after)
    await gemini.generate(ImageRequest(prompt="p"))


async def test_a_retry_delay_in_whole_seconds_is_read_as_is(fake, client):
    fake.configure(rpm=1, window_seconds=13)
    gemini = provider(fake, client)
    await gemini.generate(ImageRequest(prompt="p"))
    with pytest.raises(QuotaError) as caught:
        await gemini.generate(ImageRequest(prompt="p"))
    assert 12 < caught.value.retry_after <= 13
    assert caught.value.message == "Gemini quota exceeded (retry in 13s)"


async def test_a_per_day_quota_failure_is_a_daily_quota_error(fake, client):
    fake.configure(daily_limit=1)
    gemini = provider(fake, client)
    await gemini.generate(ImageRequest(prompt="p"))
    with pytest.raises(DailyQuotaError) as caught:
        await gemini.generate(ImageRequest(prompt="p"))
    # The answer carried a RetryInfo too; a spent daily quota must not look like a short wait.
    assert caught.value.retry_after is None and not caught.value.retryable


async def test_too_many_concurrent_requests_is_a_quota_error_without_a_delay(fake, client):
    fake.configure(max_concurrent=1, latency={"seconds": 0.2})
    gemini = provider(fake, client)
    results = await asyncio.gather(
        *(gemini.generate(ImageRequest(prompt="p")) for _ in range(2)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and type(errors[0]) is QuotaError and errors[0].retry_after is None


@pytest.mark.parametrize("style", ["finish_reason", "prompt_feedback"])
async def test_a_safety_block_from_generate_content_is_a_safety_error(fake, client, style):
    fake.configure(gemini_block_style=style)
    with pytest.raises(SafetyError, match="Gemini rejected the prompt"):
        await provider(fake, client).generate(ImageRequest(prompt="forbidden", references=(reference(1),)))


async def test_imagen_returning_no_predictions_is_a_safety_error(fake, client):
    with pytest.raises(SafetyError, match="Gemini filtered the image"):
        await provider(fake, client).generate(ImageRequest(prompt="something forbidden"))


async def test_an_invalid_key_is_an_auth_error(fake, client):
    fake.configure(api_key="AIza-right")
    gemini = provider(fake, client, api_key="AIza-wrong-secret")
    with pytest.raises(AuthError) as caught:
        await gemini.generate(ImageRequest(prompt="p"))
    assert caught.value.message == "Gemini rejected the API key"
    assert "AIza-wrong-secret" not in repr(gemini) + str(caught.value)


async def test_a_missing_key_is_an_auth_error(fake, client):
    with pytest.raises(AuthError) as caught:
        await provider(fake, client, api_key="").generate(ImageRequest(prompt="p"))
    assert caught.value.http_status == 403


async def test_invalid_argument_is_an_invalid_request_error(fake, client):
    with pytest.raises(InvalidRequestError, match="Gemini rejected the request"):
        await provider(fake, client).generate(ImageRequest(prompt=""))


@pytest.mark.parametrize(
    "fault", ["500", "503", "html", "drop", "truncated", "not_image", "bad_base64", "timeout"]
)
@pytest.mark.parametrize("with_references", [False, True])
async def test_server_faults_and_garbage_bodies_are_transient(fake, client, fault, with_references):
    fake.fail_next(fault)
    refs = (reference(1),) if with_references else ()
    with pytest.raises(TransientError):
        await provider(fake, client).generate(ImageRequest(prompt="p", references=refs))
