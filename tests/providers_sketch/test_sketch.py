from __future__ import annotations

from io import BytesIO

import pytest
from PIL import Image, ImageChops

from generation.providers import get_provider
from generation.providers.base import ImageRequest, InvalidRequestError, Reference
from generation.providers.sketch import THUMB, SketchProvider

PROMPT = "Gopal Bhar haggles over mangoes in the busy market while the king's guards watch"
RED = (220, 20, 20)
# Thumbnails sit in a row along the top right, the first reference rightmost.
INSET = (768 - 12 - THUMB - 10, 12, 768 - 12 - 10, 12 + THUMB)
NAME_BAND = (768 - 12 - THUMB - 10, 12 + THUMB, 768 - 12 - 10, 12 + THUMB + 21)


def picture(color: tuple[int, int, int], *, size: tuple[int, int] = (300, 400), fmt: str = "PNG") -> bytes:
    out = BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image.convert("RGB")


def red_pixels(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    data = image.crop(box).tobytes()
    return sum(1 for i in range(0, len(data), 3) if data[i] > 180 and data[i + 1] < 70 and data[i + 2] < 70)


async def generate(**fields: object) -> bytes:
    request = ImageRequest(**{"prompt": PROMPT, "seed": 7, "label": "Scene 3", **fields})
    result = await SketchProvider().generate(request)
    return result.image


async def test_it_renders_a_png_of_the_expected_size() -> None:
    image = Image.open(BytesIO(await generate()))
    assert (image.format, image.size) == ("PNG", (768, 512))


async def test_it_follows_the_aspect_ratio() -> None:
    assert decode(await generate(aspect_ratio="16:9")).size == (768, 432)
    assert decode(await generate(aspect_ratio="1:1")).size == (768, 768)
    assert decode(await generate(aspect_ratio="nonsense")).size == (768, 512)


async def test_it_returns_the_seed_model_and_mime() -> None:
    result = await SketchProvider().generate(ImageRequest(prompt=PROMPT, seed=42))
    assert (result.mime, result.seed, result.model) == ("image/png", 42, "sketch-v1")


async def test_it_is_deterministic() -> None:
    references = (Reference("Gopal", picture(RED)),)
    assert await generate(references=references) == await generate(references=references)


async def test_it_draws_a_different_panel_for_another_prompt_or_seed() -> None:
    panel = await generate()
    assert await generate(prompt="The river at night under the moon") != panel
    assert await generate(seed=8) != panel
    assert await generate(seed=None) != panel


async def test_it_insets_each_reference_as_a_thumbnail() -> None:
    without = decode(await generate())
    with_reference = decode(await generate(references=(Reference("Gopal", picture(RED)),)))
    assert red_pixels(without, INSET) == 0
    assert red_pixels(with_reference, INSET) > 0.9 * THUMB * THUMB


async def test_it_draws_the_character_name_under_its_thumbnail() -> None:
    gopal = decode(await generate(references=(Reference("Gopal", picture(RED)),)))
    raja = decode(await generate(references=(Reference("Raja", picture(RED)),)))
    changed = ImageChops.difference(gopal, raja).getbbox()
    assert changed is not None
    left, top, right, bottom = changed
    assert NAME_BAND[0] <= left and right <= NAME_BAND[2]
    assert NAME_BAND[1] <= top and bottom <= NAME_BAND[3]


async def test_it_draws_the_label_top_left() -> None:
    scene_3, scene_4 = decode(await generate()), decode(await generate(label="Scene 4"))
    changed = ImageChops.difference(scene_3, scene_4).getbbox()
    assert changed is not None
    assert changed[2] < 200 and changed[3] < 60


async def test_it_skips_a_reference_that_is_not_an_image() -> None:
    references = (Reference("Ghost", b"not an image"), Reference("Gopal", picture(RED)))
    image = decode(await generate(references=references))
    # The broken reference gives up its slot, so Gopal's thumbnail is the rightmost one.
    assert red_pixels(image, INSET) > 0.9 * THUMB * THUMB


async def test_it_accepts_jpeg_and_transparent_references() -> None:
    transparent = BytesIO()
    Image.new("RGBA", (200, 200), (0, 0, 0, 0)).save(transparent, format="PNG")
    references = (
        Reference("Gopal", picture(RED, fmt="JPEG"), "image/jpeg"),
        Reference("Raja", transparent.getvalue()),
    )
    image = decode(await generate(references=references))
    assert red_pixels(image, INSET) > 0.8 * THUMB * THUMB


async def test_it_survives_many_references_and_a_very_long_prompt() -> None:
    references = tuple(Reference(f"Character {i}", picture((i * 20, 90, 90))) for i in range(12))
    image = decode(await generate(prompt="word " * 400 + "x" * 300, references=references))
    assert image.size == (768, 512)


async def test_it_renders_a_prompt_in_another_script() -> None:
    assert decode(await generate(prompt="গোপাল বাজারে আম কিনছে")).size == (768, 512)


@pytest.mark.parametrize("prompt", ["", "   \n "])
async def test_it_rejects_an_empty_prompt(prompt: str) -> None:
    with pytest.raises(InvalidRequestError):
        await SketchProvider().generate(ImageRequest(prompt=prompt))


def test_it_is_registered_as_sketch_and_ignores_options_it_does_not_need() -> None:
    provider = get_provider("sketch", model="anything", credential="key", timeout=30)
    assert isinstance(provider, SketchProvider)
    assert provider.credential == "key"
