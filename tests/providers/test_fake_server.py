"""The fake server's own behaviour, through plain httpx on loopback."""

from __future__ import annotations

import asyncio
import base64
import random
import statistics
import subprocess
import sys
import time

import httpx
import pytest

from generation.fakeprovider import FakeConfig, FakeProviderServer, Latency, counter_of
from generation.providers import get_provider
from generation.providers.base import ImageRequest
from tests.conftest import QuotaClock

GEN = "/v1/images/generations"
BODY = {"model": "gpt-image-1", "prompt": "p", "size": "1024x1024"}


def auth(key: str = "k") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def post(http: httpx.AsyncClient, fake: FakeProviderServer, key: str = "k") -> httpx.Response:
    return await http.post(fake.url + GEN, json=BODY, headers=auth(key))


async def test_the_rpm_window_rolls(fake):
    clock = QuotaClock(fake)
    fake.configure(rpm=2, time_scale=0.005)  # a 0.3 s window
    async with httpx.AsyncClient() as http:
        statuses = [(await post(http, fake)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        clock.advance(0.1)
        rejected = await post(http, fake)
        wait = int(rejected.headers["retry-after-ms"]) / 1000
        assert 0 < wait <= 0.3 and rejected.headers["retry-after"] == "1"
        assert rejected.headers["x-ratelimit-remaining-requests"] == "0"
        assert rejected.json()["error"]["code"] == "rate_limit_exceeded"
        clock.advance(wait - 0.01)
        assert (await post(http, fake)).status_code == 429  # not a moment before the wait it announced
        clock.advance(0.02)
        assert (await post(http, fake)).status_code == 200


async def test_quotas_are_counted_per_key(fake):
    fake.configure(rpm=1)
    async with httpx.AsyncClient() as http:
        assert (await post(http, fake, "a")).status_code == 200
        assert (await post(http, fake, "b")).status_code == 200
        assert (await post(http, fake, "a")).status_code == 429


async def test_gemini_style_quota_errors_carry_retry_info_and_quota_failure(fake):
    fake.configure(rpm=1, daily_limit=2, window_seconds=13)
    url = fake.base_url("gemini") + "/models/imagen-4.0-generate-001:predict"
    body = {"instances": [{"prompt": "p"}], "parameters": {"sampleCount": 1}}
    async with httpx.AsyncClient(headers={"x-goog-api-key": "k"}) as http:
        assert (await http.post(url, json=body)).status_code == 200
        error = (await http.post(url, json=body)).json()["error"]
        assert error["status"] == "RESOURCE_EXHAUSTED"
        by_type = {d["@type"].rsplit(".", 1)[1]: d for d in error["details"]}
        assert by_type["RetryInfo"]["retryDelay"] == "13s"
        assert "PerMinute" in by_type["QuotaFailure"]["violations"][0]["quotaId"]
        fake.configure(rpm=None)
        assert (await http.post(url, json=body)).status_code == 200
        daily = (await http.post(url, json=body)).json()["error"]
        assert "PerDay" in daily["details"][0]["violations"][0]["quotaId"]


async def test_openai_daily_exhaustion_is_insufficient_quota(fake):
    fake.configure(daily_exhausted=True)
    async with httpx.AsyncClient() as http:
        response = await post(http, fake)
    assert response.status_code == 429 and response.json()["error"]["code"] == "insufficient_quota"


async def test_requests_beyond_max_concurrent_get_429(fake):
    fake.configure(max_concurrent=2, latency=0.2)
    async with httpx.AsyncClient() as http:
        responses = await asyncio.gather(*(post(http, fake) for _ in range(5)))
    assert sorted(r.status_code for r in responses) == [200, 200, 429, 429, 429]
    assert sorted(r.outcome for r in fake.requests) == ["concurrency"] * 3 + ["ok"] * 2
    assert fake.limits.in_flight() == 0


async def test_latency_is_multiplied_by_time_scale(fake):
    fake.configure(latency=Latency(seconds=20.0), time_scale=0.01)
    async with httpx.AsyncClient() as http:
        started = time.monotonic()
        await post(http, fake)
    assert 0.18 < time.monotonic() - started < 1.0


def test_lognormal_latency_has_the_configured_median():
    latency = Latency(kind="lognormal", seconds=2.0, sigma=0.5)
    rng = random.Random(1)
    samples = [latency.sample(rng) for _ in range(4000)]
    assert statistics.median(samples) == pytest.approx(2.0, rel=0.05)
    assert min(samples) > 0 and max(samples) > 4


async def test_every_image_is_distinct(fake):
    async with httpx.AsyncClient() as http:
        answers = [(await post(http, fake)).json()["data"][0]["b64_json"] for _ in range(3)]
    counters = {counter_of(base64.b64decode(answer)) for answer in answers}
    assert len(counters) == 3


async def test_fault_rates_are_reproducible_with_a_seed():
    outcomes = []
    for _ in range(2):
        async with FakeProviderServer(FakeConfig(faults={"500": 0.3, "503": 0.2}, seed=3)) as fake:
            async with httpx.AsyncClient() as http:
                outcomes.append([(await post(http, fake)).status_code for _ in range(30)])
    assert outcomes[0] == outcomes[1]
    assert {500, 503, 200} == set(outcomes[0])


async def test_fail_next_applies_faults_in_order(fake):
    fake.fail_next("503", "500")
    async with httpx.AsyncClient() as http:
        statuses = [(await post(http, fake)).status_code for _ in range(3)]
    assert statuses == [503, 500, 200]
    assert [r.outcome for r in fake.requests] == ["503", "500", "ok"]


async def test_a_hung_request_is_recorded_and_releases_its_slot(fake):
    fake.configure(max_concurrent=1)
    fake.fail_next("timeout")
    async with httpx.AsyncClient(timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await post(http, fake)
        await asyncio.sleep(0.05)  # the server notices the client left
        assert (await post(http, fake)).status_code == 200
    assert [(r.outcome, r.status) for r in fake.requests] == [("timeout", 0), ("ok", 200)]


async def test_a_dropped_connection_gives_no_answer(fake):
    fake.fail_next("drop")
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await post(http, fake)
    assert fake.requests[0].status == 0


async def test_the_auth_check_answers_in_each_providers_style(fake):
    fake.configure(api_key="right", basic_auth=["u", "p"])
    async with httpx.AsyncClient() as http:
        openai = await post(http, fake, "wrong")
        gemini = await http.post(
            fake.base_url("gemini") + "/models/imagen-4.0-generate-001:predict",
            json={},
            headers={"x-goog-api-key": "no"},
        )
        a1111 = await http.post(fake.url + "/sdapi/v1/txt2img", json={}, auth=("u", "nope"))
    assert openai.status_code == 401 and openai.json()["error"]["code"] == "invalid_api_key"
    assert "wrong" not in openai.text  # like OpenAI, the fake masks the key it echoes
    assert gemini.status_code == 400 and gemini.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert a1111.status_code == 401 and a1111.headers["www-authenticate"] == "Basic"


async def test_the_admin_endpoints_change_config_and_list_requests(fake):
    async with httpx.AsyncClient() as http:
        changed = await http.post(fake.url + "/_fake/config", json={"rpm": 1, "latency": {"seconds": 0.01}})
        assert changed.json()["rpm"] == 1 and changed.json()["latency"]["seconds"] == 0.01
        assert fake.config.rpm == 1
        await post(http, fake)
        await post(http, fake)
        listed = (await http.get(fake.url + "/_fake/requests")).json()
        assert [(r["path"], r["status"], r["outcome"]) for r in listed] == [
            (GEN, 200, "ok"),
            (GEN, 429, "quota"),
        ]
        assert listed[0]["json"]["prompt"] == "p" and listed[0]["provider"] == "openai"
        bad = await http.post(fake.url + "/_fake/config", json={"nope": 1})
        assert bad.status_code == 400 and "nope" in bad.json()["error"]
        assert (
            await http.post(fake.url + "/_fake/config", json={"faults": {"meteor": 1}})
        ).status_code == 400
        await http.post(fake.url + "/_fake/reset")
        assert (await http.get(fake.url + "/_fake/requests")).json() == []
        assert (await post(http, fake)).status_code == 200  # the window was reset too


async def test_the_recorder_summarises_multipart_and_inline_parts(fake):
    files = [("image[]", ("a.png", b"x" * 10, "image/png")), ("image[]", ("b.png", b"y" * 20, "image/png"))]
    async with httpx.AsyncClient() as http:
        await http.post(fake.url + "/v1/images/edits", data={"prompt": "p"}, files=files, headers=auth())
        listed = (await http.get(fake.url + "/_fake/requests")).json()
    assert listed[0]["image_parts"] == 2
    assert [f["size"] for f in listed[0]["files"]] == [10, 20]
    assert listed[0]["form"] == {"prompt": "p"}


def test_it_runs_in_a_background_thread_for_sync_callers():
    with FakeProviderServer(FakeConfig(rpm=1)) as fake:
        first = httpx.post(fake.url + GEN, json=BODY, headers=auth())
        second = httpx.post(fake.url + GEN, json=BODY, headers=auth())
        fake.configure(rpm=None)
        third = httpx.post(fake.url + GEN, json=BODY, headers=auth())
    assert [first.status_code, second.status_code, third.status_code] == [200, 429, 200]
    with pytest.raises(httpx.ConnectError):
        httpx.post(fake.url + GEN, json=BODY, headers=auth())


@pytest.mark.parametrize("flavor", ["openai", "gemini", "comfyui", "a1111"])
async def test_the_fake_provider_name_builds_a_real_client_for_each_flavor(fake, flavor):
    provider = get_provider("fake", flavor=flavor, base_url=fake.url)
    try:
        result = await provider.generate(ImageRequest(prompt="p"))
    finally:
        await provider.aclose()
    assert result.image.startswith(b"\x89PNG")
    assert fake.requests[0].provider == flavor


def test_it_runs_standalone_from_the_command_line():
    command = [sys.executable, "-m", "generation.fakeprovider", "--port", "0", "--rpm", "1", "--latency", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:")
        statuses = [httpx.post(url + GEN, json=BODY, headers=auth(), timeout=5).status_code for _ in range(2)]
        assert statuses == [200, 429]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


async def test_it_can_keep_retry_after_and_rate_headers_to_itself(fake):
    fake.configure(rpm=1, omit=["retry_after", "rate_headers"])
    async with httpx.AsyncClient() as http:
        accepted = await post(http, fake)
        rejected = await post(http, fake)
    assert accepted.status_code == 200 and rejected.status_code == 429
    for response in (accepted, rejected):
        assert not [name for name in response.headers if name.startswith(("retry-after", "x-ratelimit"))]
    message = rejected.json()["error"]["message"]
    assert "try again" not in message and "Limit" not in message


async def test_omissions_apply_per_flavor(fake):
    fake.configure(rpm=1, omit=["gemini:retry_after"])
    url = fake.base_url("gemini") + "/models/imagen-4.0-generate-001:predict"
    body = {"instances": [{"prompt": "p"}], "parameters": {"sampleCount": 1}}
    async with httpx.AsyncClient(headers={"x-goog-api-key": "k"}) as http:
        await http.post(url, json=body)
        error = (await http.post(url, json=body)).json()["error"]
        await post(http, fake)
        openai = await post(http, fake)
    kinds = {d["@type"].rsplit(".", 1)[1] for d in error["details"]}
    assert "RetryInfo" not in kinds and "QuotaFailure" in kinds
    assert "retry in" not in error["message"]
    assert openai.headers["retry-after"] == "60"  # OpenAI still says it


def test_the_command_line_takes_omissions():
    from generation.fakeprovider.__main__ import config_from, parse_args

    config = config_from(parse_args(["--omit", "retry_after", "--omit", "openai:rate_headers"]))
    assert config.omits("retry_after", "gemini") and config.omits("rate_headers", "openai")
    assert not config.omits("rate_headers", "gemini")
    with pytest.raises(SystemExit):
        config_from(parse_args(["--omit", "everything"]))


async def test_an_unknown_omission_is_refused(fake):
    with pytest.raises(ValueError, match="unknown omit names: secrets"):
        fake.configure(omit=["secrets"])
