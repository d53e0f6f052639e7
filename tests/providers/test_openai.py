from __future__ import annotations

import pytest

from generation.fakeprovider import FakeProviderServer, counter_of
from generation.providers.base import (
    AuthError,
    DailyQuotaError,
    ImageRequest,
    InvalidRequestError,
    QuotaError,
    SafetyError,
    TransientError,
)
from generation.providers.openai import OpenAIProvider
from tests.conftest import QuotaClock
from tests.providers.helpers import closed_port, reference

KEY = "sk-test-0123456789abcdef"


def provider(fake: FakeProviderServer, client, **options) -> OpenAIProvider:
    return OpenAIProvider(
        api_key=options.pop("api_key", KEY), base_url=fake.base_url("openai"), client=client, **options
    )


async def test_it_generates_with_the_documented_request(fake, client):
    result = await provider(fake, client).generate(ImageRequest(prompt="A lighthouse at dusk"))

    sent = fake.recorder.last("/v1/images/generations")
    assert sent.method == "POST"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json == {
        "model": "gpt-image-1",
        "prompt": "A lighthouse at dusk",
        "size": "1536x1024",
        "quality": "medium",
        "output_format": "png",
        "n": 1,
    }
    assert result.mime == "image/png" and result.image.startswith(b"\x89PNG")
    assert result.model == "gpt-image-1"
    assert "usage" in result.meta


async def test_each_request_gets_a_distinct_image(fake, client):
    openai = provider(fake, client)
    first, second = [await openai.generate(ImageRequest(prompt="p")) for _ in range(2)]
    assert counter_of(first.image) != counter_of(second.image)


async def test_it_reads_rate_limit_headers_on_success(fake, client):
    fake.configure(rpm=10)
    result = await provider(fake, client).generate(ImageRequest(prompt="p"))
    assert result.rate_limit is not None
    assert result.rate_limit.limit_requests == 10
    assert result.rate_limit.remaining_requests == 9
    assert 59 < result.rate_limit.reset_seconds <= 60


async def test_references_go_to_edits_as_image_parts(fake, client):
    refs = tuple(reference(n) for n in range(3))
    await provider(fake, client).generate(ImageRequest(prompt="Both heroes on a bridge", references=refs))

    sent = fake.recorder.last("/v1/images/edits")
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.image_parts == 3
    assert [part.field for part in sent.files] == ["image[]"] * 3
    assert [part.data for part in sent.files] == [ref.image for ref in refs]
    assert all(part.content_type == "image/png" and part.filename.endswith(".png") for part in sent.files)
    assert sent.form["prompt"] == "Both heroes on a bridge"
    assert sent.form["model"] == "gpt-image-1"
    assert sent.form["size"] == "1536x1024"
    assert fake.recorder.find("/v1/images/generations") == []


async def test_it_sends_at_most_sixteen_references(fake, client):
    refs = tuple(reference(n) for n in range(20))
    await provider(fake, client).generate(ImageRequest(prompt="crowd", references=refs))
    assert fake.recorder.last("/edits").image_parts == 16


async def test_it_maps_other_sizes_to_a_gpt_image_size_of_the_same_orientation(fake, client):
    openai = provider(fake, client)
    for size, expected in [("1920x1080", "1536x1024"), ("768x1344", "1024x1536"), ("512x512", "1024x1024")]:
        await openai.generate(ImageRequest(prompt="p", size=size))
        assert fake.recorder.last().json["size"] == expected


async def test_rate_limit_is_a_quota_error_with_the_wait(fake, client):
    clock = QuotaClock(fake)
    fake.configure(rpm=1, time_scale=0.005)  # a 0.3 s window
    openai = provider(fake, client)
    await openai.generate(ImageRequest(prompt="p"))

    with pytest.raises(QuotaError) as caught:
        await openai.generate(ImageRequest(prompt="p"))

    error = caught.value
    assert type(error) is QuotaError and error.retryable
    assert 0.15 < error.retry_after <= 0.3
    assert error.rate_limit.remaining_requests == 0
    assert error.message == "OpenAI rate limit reached (retry in 1s)"
    clock.advance(error.retry_after)
    await openai.generate(ImageRequest(prompt="p"))


async def test_insufficient_quota_is_a_daily_quota_error(fake, client):
    fake.configure(daily_exhausted=True)
    with pytest.raises(DailyQuotaError) as caught:
        await provider(fake, client).generate(ImageRequest(prompt="p"))
    assert not caught.value.retryable
    assert caught.value.kind == "daily_quota"


async def test_a_moderation_block_is_a_safety_error(fake, client):
    with pytest.raises(SafetyError) as caught:
        await provider(fake, client).generate(ImageRequest(prompt="A forbidden scene"))
    assert caught.value.message == "OpenAI rejected the prompt (safety system)"


async def test_a_wrong_key_is_an_auth_error_that_never_shows_the_key(fake, client):
    fake.configure(api_key="sk-the-right-one")
    openai = provider(fake, client, api_key="sk-wrong-secret-key-42")
    with pytest.raises(AuthError) as caught:
        await openai.generate(ImageRequest(prompt="p"))
    assert caught.value.http_status == 401
    for text in (str(caught.value), repr(caught.value), repr(openai)):
        assert "sk-wrong-secret-key-42" not in text
    assert openai.credential.startswith("openai:") and "secret" not in openai.credential


async def test_other_bad_requests_are_invalid_request_errors(fake, client):
    with pytest.raises(InvalidRequestError) as caught:
        await provider(fake, client).generate(ImageRequest(prompt=""))
    assert "prompt" in caught.value.message


@pytest.mark.parametrize(
    "fault",
    ["500", "503", "html", "drop", "truncated", "not_image", "bad_base64", "truncated_image", "timeout"],
)
async def test_server_faults_and_garbage_bodies_are_transient(fake, client, fault):
    fake.fail_next(fault)
    with pytest.raises(TransientError) as caught:
        await provider(fake, client).generate(ImageRequest(prompt="p"))
    assert caught.value.retryable
    assert len(caught.value.message) < 80
    await provider(fake, client).generate(ImageRequest(prompt="p"))  # and the next one works


async def test_an_unreachable_server_is_transient(client):
    openai = OpenAIProvider(api_key=KEY, base_url=f"http://127.0.0.1:{closed_port()}", client=client)
    with pytest.raises(TransientError, match="Could not connect to OpenAI"):
        await openai.generate(ImageRequest(prompt="p"))


async def test_it_closes_only_the_client_it_made(fake, client):
    owned = OpenAIProvider(api_key=KEY, base_url=fake.url)
    await owned.generate(ImageRequest(prompt="p"))
    await owned.aclose()
    assert owned._client.is_closed
    borrowed = provider(fake, client)
    await borrowed.aclose()
    assert not client.is_closed


async def test_the_credential_is_shared_by_providers_with_the_same_key(fake, client):
    assert provider(fake, client).credential == provider(fake, client).credential
    assert provider(fake, client).credential != provider(fake, client, api_key="sk-other").credential


async def test_a_malformed_base_url_is_an_invalid_request_error(client):
    with pytest.raises(InvalidRequestError, match="not a valid http"):
        await OpenAIProvider(api_key=KEY, base_url="ftp://example.invalid", client=client).generate(
            ImageRequest(prompt="p")
        )
