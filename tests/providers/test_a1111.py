from __future__ import annotations

import base64

import pytest

from generation.fakeprovider import FakeProviderServer
from generation.providers.a1111 import A1111Provider
from generation.providers.base import AuthError, ImageRequest, InvalidRequestError, TransientError
from tests.providers.helpers import reference


def provider(fake: FakeProviderServer, client, **options) -> A1111Provider:
    return A1111Provider(base_url=fake.base_url("a1111"), client=client, **options)


async def test_it_posts_txt2img_with_the_documented_fields(fake, client):
    request = ImageRequest(prompt="A knight, oil painting", seed=99, size="1216x832")
    result = await provider(fake, client, steps=30).generate(request)

    sent = fake.recorder.last("/sdapi/v1/txt2img")
    assert sent.method == "POST"
    assert "authorization" not in sent.headers
    assert sent.json == {
        "prompt": "A knight, oil painting",
        "seed": 99,
        "width": 1216,
        "height": 832,
        "steps": 30,
        "batch_size": 1,
        "n_iter": 1,
    }
    assert result.image.startswith(b"\x89PNG") and result.seed == 99


async def test_it_asks_the_server_for_a_seed_and_reports_the_one_used(fake, client):
    result = await provider(fake, client).generate(ImageRequest(prompt="p"))
    assert fake.recorder.last().json["seed"] == -1
    assert isinstance(result.seed, int) and result.seed >= 0


async def test_options_and_model_are_passed_through(fake, client):
    a1111 = provider(
        fake, client, model="sdxl.safetensors", options={"negative_prompt": "blurry", "cfg_scale": 6}
    )
    await a1111.generate(ImageRequest(prompt="p", references=(reference(1),)))
    sent = fake.recorder.last().json
    assert sent["negative_prompt"] == "blurry" and sent["cfg_scale"] == 6
    assert sent["override_settings"] == {"sd_model_checkpoint": "sdxl.safetensors"}
    assert "init_images" not in sent  # txt2img takes no references


async def test_it_sends_basic_auth_when_configured(fake, client):
    fake.configure(basic_auth=["artist", "s3cret"])
    await provider(fake, client, username="artist", password="s3cret").generate(ImageRequest(prompt="p"))
    expected = "Basic " + base64.b64encode(b"artist:s3cret").decode()
    assert fake.recorder.last().headers["authorization"] == expected


async def test_wrong_credentials_are_an_auth_error_without_the_password(fake, client):
    fake.configure(basic_auth=["artist", "s3cret"])
    a1111 = provider(fake, client, username="artist", password="wrong-pass-77")
    with pytest.raises(AuthError) as caught:
        await a1111.generate(ImageRequest(prompt="p"))
    assert "wrong-pass-77" not in str(caught.value) + repr(a1111) + a1111.credential


async def test_a_validation_error_is_an_invalid_request_error(fake, client):
    with pytest.raises(InvalidRequestError, match="steps: Input should be a valid integer"):
        await provider(fake, client, options={"steps": "many"}).generate(ImageRequest(prompt="p"))


async def test_an_out_of_memory_error_is_transient_and_says_so(fake, client):
    fake.fail_next("500")
    with pytest.raises(TransientError, match="CUDA out of memory"):
        await provider(fake, client).generate(ImageRequest(prompt="p"))


@pytest.mark.parametrize("fault", ["503", "html", "drop", "timeout", "truncated", "not_image", "bad_base64"])
async def test_server_faults_and_garbage_bodies_are_transient(fake, client, fault):
    fake.fail_next(fault)
    with pytest.raises(TransientError):
        await provider(fake, client).generate(ImageRequest(prompt="p"))
