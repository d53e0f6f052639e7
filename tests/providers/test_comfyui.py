from __future__ import annotations

import asyncio
import json

import pytest

from generation.fakeprovider import FakeProviderServer
from generation.fakeprovider.workflows import reference_workflow, text_workflow
from generation.providers.base import ImageRequest, InvalidRequestError, Reference, TransientError
from generation.providers.comfyui import ComfyUIProvider, fill_workflow
from tests.providers.helpers import reference


def provider(
    fake: FakeProviderServer, client, workflow: dict | str | None = None, **options
) -> ComfyUIProvider:
    return ComfyUIProvider(
        workflow=workflow if workflow is not None else text_workflow(),
        base_url=fake.base_url("comfyui"),
        client=client,
        poll_interval=0.01,
        **options,
    )


async def test_it_queues_the_filled_workflow_and_downloads_the_output(fake, client):
    result = await provider(fake, client).generate(ImageRequest(prompt="A castle on a hill", seed=1234))

    queued = fake.recorder.last("/prompt")
    assert set(queued.json) == {"prompt", "client_id"} and queued.json["client_id"]
    nodes = queued.json["prompt"]
    assert nodes["6"]["inputs"]["text"] == "A castle on a hill"
    assert nodes["3"]["inputs"]["seed"] == 1234  # an int, as KSampler wants
    view = fake.recorder.last("/view")
    assert view.query == {"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"}
    assert result.image.startswith(b"\x89PNG") and result.seed == 1234
    assert result.meta["prompt_id"] in fake.recorder.last("/history/").path


async def test_it_picks_a_seed_when_the_request_has_none(fake, client):
    result = await provider(fake, client).generate(ImageRequest(prompt="p"))
    assert isinstance(result.seed, int)
    assert fake.recorder.last("/prompt").json["prompt"]["3"]["inputs"]["seed"] == result.seed


async def test_it_polls_history_until_the_job_is_done(fake, client):
    fake.configure(latency=0.1)
    await provider(fake, client).generate(ImageRequest(prompt="p"))
    polls = fake.recorder.find("/history/")
    assert len(polls) > 2
    assert [p.outcome for p in polls][-1] == "ok" and polls[0].outcome == "pending"


async def test_it_uploads_a_reference_once_and_puts_its_name_in_the_workflow(fake, client):
    comfy = provider(fake, client, reference_workflow(1))
    hero = reference(1)
    await comfy.prepare_reference(hero)
    await comfy.generate(ImageRequest(prompt="p", references=(hero,)))
    await comfy.generate(ImageRequest(prompt="p", references=(hero,)))

    uploads = fake.recorder.find("/upload/image")
    assert len(uploads) == 1
    assert uploads[0].image_parts == 1 and uploads[0].files[0].data == hero.image
    assert uploads[0].form["overwrite"] == "true"
    name = uploads[0].files[0].filename
    assert [p.json["prompt"]["101"]["inputs"]["image"] for p in fake.recorder.find("/prompt")] == [name, name]


async def test_concurrent_scenes_with_the_same_character_upload_it_once(fake, client):
    comfy = provider(fake, client, reference_workflow(1))
    hero = reference(1)
    await asyncio.gather(
        *(comfy.generate(ImageRequest(prompt=f"scene {n}", references=(hero,))) for n in range(5))
    )
    assert len(fake.recorder.find("/upload/image")) == 1


async def test_a_changed_reference_image_is_uploaded_again(fake, client):
    comfy = provider(fake, client, reference_workflow(1))
    await comfy.generate(ImageRequest(prompt="p", references=(Reference("hero", reference(1).image),)))
    await comfy.generate(ImageRequest(prompt="p", references=(Reference("hero", reference(2).image),)))

    uploads = fake.recorder.find("/upload/image")
    assert [u.files[0].data for u in uploads] == [reference(1).image, reference(2).image]
    images = [p.json["prompt"]["101"]["inputs"]["image"] for p in fake.recorder.find("/prompt")]
    assert images[0] != images[1]


async def test_a_new_provider_instance_uploads_again(fake, client):
    hero = reference(1)
    for _ in range(2):
        await provider(fake, client, reference_workflow(1)).generate(
            ImageRequest(prompt="p", references=(hero,))
        )
    assert len(fake.recorder.find("/upload/image")) == 2


async def test_the_workflow_decides_how_many_references_it_takes(fake, client):
    comfy = provider(fake, client, reference_workflow(2))
    assert comfy.max_references == 2
    assert provider(fake, client).max_references == 0
    await comfy.generate(ImageRequest(prompt="p", references=(reference(1), reference(2), reference(3))))
    nodes = fake.recorder.last("/prompt").json["prompt"]
    assert nodes["101"]["inputs"]["image"] != nodes["102"]["inputs"]["image"]
    assert len(fake.recorder.find("/upload/image")) == 2


async def test_a_reference_workflow_without_references_is_refused_before_sending(fake, client):
    with pytest.raises(InvalidRequestError, match="needs 1 reference"):
        await provider(fake, client, reference_workflow(1)).generate(ImageRequest(prompt="p"))
    assert fake.recorder.requests == []


async def test_node_errors_are_an_invalid_request_error(fake, client):
    workflow = text_workflow()
    workflow["50"] = {"class_type": "LoadImage", "inputs": {"image": "never-uploaded.png"}}
    with pytest.raises(InvalidRequestError, match=r"Invalid image file: never-uploaded\.png"):
        await provider(fake, client, workflow).generate(ImageRequest(prompt="p"))


async def test_a_workflow_without_outputs_is_an_invalid_request_error(fake, client):
    workflow = text_workflow()
    del workflow["9"]
    with pytest.raises(InvalidRequestError, match="Prompt has no outputs"):
        await provider(fake, client, workflow).generate(ImageRequest(prompt="p"))


def test_it_accepts_the_workflow_as_json_text_and_refuses_the_ui_format():
    assert ComfyUIProvider(workflow=json.dumps(text_workflow())).workflow == text_workflow()
    with pytest.raises(InvalidRequestError, match="API format"):
        ComfyUIProvider(workflow={"nodes": [], "links": []})
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        ComfyUIProvider(workflow="{nope")


def test_fill_workflow_replaces_placeholders_anywhere_and_leaves_the_original_alone():
    workflow = {
        "1": {
            "class_type": "X",
            "inputs": {
                "text": "style: {{prompt}}, seed {{seed}}",
                "seed": "{{seed}}",
                "list": ["{{reference}}", "{{reference_2}}"],
            },
        }
    }
    filled = fill_workflow(workflow, prompt="a {{seed}} cat", seed=7, references=["a.png", "b.png"])
    assert filled["1"]["inputs"] == {
        "text": "style: a {{seed}} cat, seed 7",
        "seed": 7,
        "list": ["a.png", "b.png"],
    }
    assert workflow["1"]["inputs"]["seed"] == "{{seed}}"


@pytest.mark.parametrize("fault", ["500", "503", "html", "drop", "timeout", "not_image", "truncated_image"])
async def test_server_faults_and_broken_images_are_transient(fake, client, fault):
    fake.fail_next(fault)
    with pytest.raises(TransientError):
        await provider(fake, client).generate(ImageRequest(prompt="p"))


async def test_a_job_that_never_finishes_times_out(fake, client):
    fake.configure(latency=5)
    with pytest.raises(TransientError, match="did not finish"):
        await provider(fake, client, max_wait=0.05).generate(ImageRequest(prompt="p"))


async def test_an_api_key_is_sent_as_a_bearer_token_when_configured(fake, client):
    fake.configure(api_key="comfy-secret")
    comfy = provider(fake, client, reference_workflow(1), api_key="comfy-secret")
    await comfy.generate(ImageRequest(prompt="p", references=(reference(1),)))
    assert {r.headers.get("authorization") for r in fake.requests} == {"Bearer comfy-secret"}
    assert "comfy-secret" not in repr(comfy)
