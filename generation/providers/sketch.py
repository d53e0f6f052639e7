"""The offline image provider: draws a storyboard panel with Pillow, no network, no model.

It is what `make run` uses, so it has to look like a storyboard (a composed frame, the scene label, the
prompt as a caption, the character references inset) and show that references really flow through. The
picture is a pure function of the request: the composition comes from a hash of prompt and seed, so the
same request always gives the same PNG bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageDraw, ImageFont, ImageOps

from generation.providers import register
from generation.providers.base import ImageRequest, ImageResult, InvalidRequestError, Provider, Reference

MODEL = "sketch-v1"
WIDTH = 768
THUMB = 80
MAX_FIGURES = 4
CAPTION_LINES = 3

Color = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Point = tuple[float, float]

PAPER: Color = (246, 243, 236)
INK: Color = (38, 38, 44)
_MOODS: dict[str, tuple[Color, Color, Color]] = {  # sky top, sky at the horizon, ground
    "day": ((200, 219, 234), (236, 240, 238), (214, 209, 190)),
    "dusk": ((226, 178, 156), (249, 222, 184), (190, 172, 150)),
    "night": ((36, 42, 68), (82, 88, 118), (52, 56, 64)),
}
_MOOD_WORDS = {
    "night": {"night", "moon", "moonlight", "midnight", "stars", "dark", "lantern", "candle"},
    "dusk": {"sunset", "dusk", "evening", "twilight", "dawn", "sunrise"},
}
_MOTIF_WORDS = {
    "water": {"sea", "river", "lake", "ocean", "pond", "boat", "shore", "beach", "ghat", "water"},
    "town": {"city", "town", "village", "market", "street", "house", "palace", "court", "shop", "bazaar"},
    "trees": {"forest", "tree", "trees", "garden", "jungle", "park", "woods", "orchard"},
}


@register("sketch")
class SketchProvider(Provider):
    name = "sketch"

    def __init__(self, *, model: str = "", credential: str = "", **_options: object) -> None:
        # Settings hand every provider the same options (timeouts, base URLs); a drawing needs none of them.
        super().__init__(model=model, credential=credential)

    async def generate(self, request: ImageRequest) -> ImageResult:
        if not request.prompt.strip():
            raise InvalidRequestError("The scene has no prompt")
        # Drawing and PNG encoding hold the CPU for tens of milliseconds: keep them off the event loop.
        png = await asyncio.to_thread(render_panel, request)
        return ImageResult(image=png, mime="image/png", seed=request.seed, model=MODEL)


def render_panel(request: ImageRequest) -> bytes:
    """Draw one panel as PNG bytes: WIDTH wide, as tall as the request's aspect ratio asks."""
    width, height = panel_size(request.aspect_ratio)
    fonts = _Fonts()
    caption_height = 20 + CAPTION_LINES * fonts.caption_line
    ground_line = height - caption_height
    rng = random.Random(_composition_seed(request.prompt, request.seed))
    thumbs = [_thumbnail(reference) for reference in request.references]

    image = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(image)
    mood, motif = _read_prompt(request.prompt, rng)
    horizon = int(ground_line * rng.uniform(0.5, 0.68))
    _draw_backdrop(draw, rng, mood, (width, ground_line), horizon)
    _draw_motif(draw, rng, motif, mood, (width, ground_line), horizon)
    # One figure per character, in the colours of its reference: the references show in the scene too.
    tints = [thumb.tint if thumb else None for thumb in thumbs][:MAX_FIGURES] or [None] * rng.randint(1, 2)
    _draw_figures(draw, rng, tints, width, ground_line)
    _draw_caption(draw, fonts.caption, request.prompt, (width, height), caption_height)
    label_right = _draw_label(draw, fonts.label, request.label)
    _draw_references(image, draw, fonts.name, request.references, thumbs, label_right)
    draw.rectangle((0, 0, width - 1, height - 1), outline=INK, width=4)

    out = BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def panel_size(aspect_ratio: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*", aspect_ratio or "")
    ratio = float(match[1]) / float(match[2]) if match and float(match[2]) else 1.5
    # Clamp: a panorama or a sliver leaves no room for caption and references.
    ratio = min(max(ratio, 0.75), 2.4)
    return WIDTH, round(WIDTH / ratio)


def _composition_seed(prompt: str, seed: int | None) -> int:
    # hashlib, not hash(): str hashes are salted per process, and the picture must not change on restart.
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class _Fonts:
    # Loaded per render (about 0.1 ms each): a FreeType face must not be used by two threads at once.
    def __init__(self) -> None:
        self.label = _load_font(20)
        self.caption = _load_font(17)
        self.name = _load_font(13)
        self.caption_line = 22


def _load_font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):  # Pillow built without FreeType
        return ImageFont.load_default()


def _read_prompt(prompt: str, rng: random.Random) -> tuple[str, str]:
    """Mood and motif from words in the prompt, else from the dice, so panels follow the story a little."""
    words = set(re.findall(r"\w+", prompt.casefold()))
    mood = next((m for m, keys in _MOOD_WORDS.items() if words & keys), None)
    motif = next((m for m, keys in _MOTIF_WORDS.items() if words & keys), None)
    fallback_mood = rng.choices(["day", "dusk", "night"], weights=[5, 2, 1])[0]
    fallback_motif = rng.choice(["trees", "town", "hills"])
    return mood or fallback_mood, motif or fallback_motif


# Drawing


def _stroke(draw: ImageDraw.ImageDraw, points: list[Point], rng: random.Random, fill: Color, width: int = 2):
    # Two slightly shifted passes read as a pencil line rather than a vector one.
    for _ in range(2):
        jittered = [(x + rng.uniform(-1.5, 1.5), y + rng.uniform(-1.5, 1.5)) for x, y in points]
        draw.line(jittered, fill=fill, width=width, joint="curve")


def _mix(a: Color, b: Color, t: float) -> Color:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _draw_backdrop(
    draw: ImageDraw.ImageDraw, rng: random.Random, mood: str, size: tuple[int, int], horizon: int
) -> None:
    width, bottom = size
    top, low, ground = _MOODS[mood]
    for y in range(0, horizon, 3):
        draw.rectangle((0, y, width, y + 2), fill=_mix(top, low, y / max(horizon, 1)))
    _draw_sky_light(draw, rng, mood, width, horizon)
    draw.rectangle((0, horizon, width, bottom), fill=ground)
    for layer in range(2):
        hill = _mix(low, ground, 0.45 + 0.3 * layer)
        step = width / 6
        ridge = [(i * step, horizon - rng.uniform(8, 55 - 25 * layer)) for i in range(7)]
        draw.polygon([*ridge, (width, horizon + 2), (0, horizon + 2)], fill=hill)
        _stroke(draw, ridge, rng, _mix(hill, INK, 0.5))
    _stroke(draw, [(0, horizon), (width, horizon)], rng, _mix(ground, INK, 0.6))
    shade = _mix(ground, INK, 0.18)
    offset = rng.randint(0, 11)
    for x in range(-bottom + offset, width, 12):  # ground hatching
        draw.line((x, bottom, x + (bottom - horizon), horizon + 4), fill=shade, width=1)


def _draw_sky_light(draw: ImageDraw.ImageDraw, rng: random.Random, mood: str, width: int, horizon: int):
    # Kept to the left part of the sky: the top right holds the reference thumbnails.
    x, y, r = rng.uniform(0.12, 0.55) * width, rng.uniform(0.25, 0.5) * horizon, rng.uniform(18, 30)
    if mood == "night":
        for _ in range(40):
            sx, sy = rng.uniform(0, width), rng.uniform(0, horizon * 0.8)
            draw.point((sx, sy), fill=(230, 230, 210))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(240, 236, 212))
        sky = _mix(_MOODS["night"][0], _MOODS["night"][1], y / max(horizon, 1))
        draw.ellipse((x - r * 0.5, y - r * 1.1, x + r * 1.4, y + r * 0.8), fill=sky)
    elif mood == "dusk":
        r *= 1.8
        draw.ellipse((x - r, horizon - r, x + r, horizon + r), fill=(244, 190, 120), outline=INK, width=1)
    else:
        draw.ellipse((x - r, y - r, x + r, y + r), outline=INK, width=2)
        for i in range(10):
            dx, dy = _unit(i / 10)
            _stroke(
                draw,
                [(x + dx * r * 1.3, y + dy * r * 1.3), (x + dx * r * 1.8, y + dy * r * 1.8)],
                rng,
                INK,
                1,
            )


def _unit(turn: float) -> Point:
    return math.cos(turn * math.tau), math.sin(turn * math.tau)


def _draw_motif(
    draw: ImageDraw.ImageDraw, rng: random.Random, motif: str, mood: str, size: tuple[int, int], horizon: int
) -> None:
    width, bottom = size
    ground = _MOODS[mood][2]
    if motif == "water":
        water = _mix(_MOODS[mood][1], (120, 150, 170), 0.35)
        depth = horizon + (bottom - horizon) * rng.uniform(0.35, 0.55)
        draw.rectangle((0, horizon, width, depth), fill=water)
        for _ in range(18):
            x, y = rng.uniform(0, width), rng.uniform(horizon + 6, depth - 4)
            _stroke(draw, [(x, y), (x + 10, y - 3), (x + 20, y)], rng, _mix(water, INK, 0.5), 1)
    elif motif == "town":
        _draw_buildings(draw, rng, mood, width, horizon)
    elif motif == "trees":
        for _ in range(rng.randint(4, 8)):
            x, scale = rng.uniform(0, width), rng.uniform(0.6, 1.3)
            base = horizon + rng.uniform(0, 18)
            _stroke(draw, [(x, base), (x, base - 40 * scale)], rng, INK, 3)
            box = (x - 24 * scale, base - 90 * scale, x + 24 * scale, base - 30 * scale)
            draw.ellipse(box, fill=_mix(ground, (70, 110, 70), 0.55), outline=INK, width=2)


def _draw_buildings(draw: ImageDraw.ImageDraw, rng: random.Random, mood: str, width: int, horizon: int):
    wall = _mix(_MOODS[mood][2], INK, 0.25)
    window = (245, 214, 120) if mood == "night" else _mix(wall, INK, 0.45)
    x = rng.uniform(-30, 40)
    while x < width:
        w, h = rng.uniform(45, 95), rng.uniform(40, 140)
        if rng.random() < 0.8:
            top = horizon + 6 - h
            draw.rectangle((x, top, x + w, horizon + 6), fill=wall)
            _stroke(draw, [(x, horizon + 6), (x, top), (x + w, top), (x + w, horizon + 6)], rng, INK)
            for wy in range(int(top) + 10, horizon - 10, 22):
                for wx in range(int(x) + 8, int(x + w) - 12, 18):
                    draw.rectangle((wx, wy, wx + 7, wy + 9), fill=window)
        x += w + rng.uniform(4, 30)


def _draw_figures(
    draw: ImageDraw.ImageDraw, rng: random.Random, tints: list[Color | None], width: int, bottom: int
) -> None:
    for i, tint in enumerate(tints):
        x = width * (i + 1) / (len(tints) + 1) + rng.uniform(-30, 30)
        feet = bottom - rng.uniform(14, 34)
        h = bottom * rng.uniform(0.3, 0.4)
        body = _mix(tint, INK, 0.35) if tint else _mix(INK, PAPER, 0.25)
        head = h * 0.13
        neck, hips = feet - h + head * 2, feet - h * 0.45
        draw.ellipse((x - head, feet - h, x + head, feet - h + head * 2), fill=body, outline=INK, width=2)
        shoulders, waist = h * 0.16, h * 0.11
        torso = [(x - shoulders, neck + 4), (x + shoulders, neck + 4), (x + waist, hips), (x - waist, hips)]
        draw.polygon(torso, fill=body, outline=INK)
        for side in (-1, 1):
            _stroke(draw, [(x + side * waist * 0.6, hips), (x + side * waist * 0.9, feet)], rng, INK, 5)
            reach = rng.uniform(0.2, 0.45) * h
            _stroke(
                draw,
                [(x + side * shoulders, neck + 6), (x + side * (shoulders + 8), neck + reach)],
                rng,
                INK,
                4,
            )


def _draw_caption(draw: ImageDraw.ImageDraw, font: Font, prompt: str, size: tuple[int, int], strip: int):
    width, height = size
    top = height - strip
    draw.rectangle((0, top, width, height), fill=(252, 251, 247))
    draw.line((0, top, width, top), fill=INK, width=2)
    for i, line in enumerate(_wrap(" ".join(prompt.split()), font, width - 32, CAPTION_LINES)):
        draw.text((16, top + 10 + i * 22), line, font=font, fill=INK)


def _wrap(text: str, font: Font, max_width: float, max_lines: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= max_width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    lines.append(current)
    lines = [_fit(line, font, max_width) for line in lines]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], _fit(lines[max_lines - 1] + " ...", font, max_width, force=True)]
    return lines


def _fit(text: str, font: Font, max_width: float, *, force: bool = False) -> str:
    """`text` cut to `max_width` with "...", which `force` adds even when the text fits."""
    if not force and font.getlength(text) <= max_width:
        return text
    while text and font.getlength(text.rstrip(". ") + "...") > max_width:
        text = text[:-1]
    return text.rstrip(". ") + "..."


def _draw_label(draw: ImageDraw.ImageDraw, font: Font, label: str) -> int:
    """Draw the scene label top-left; return where it ends so thumbnails stay clear of it."""
    if not label.strip():
        return 12
    _, _, right, bottom = draw.textbbox((20, 16), label.strip(), font=font)
    draw.rectangle((12, 12, right + 8, bottom + 6), fill=INK)
    draw.text((20, 16), label.strip(), font=font, fill=PAPER)
    return right + 8


# References


@dataclass(frozen=True)
class _Thumb:
    image: Image.Image
    tint: Color


def _draw_references(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    font: Font,
    references: tuple[Reference, ...],
    thumbs: list[_Thumb | None],
    label_right: int,
) -> None:
    shown = [(ref.name, thumb) for ref, thumb in zip(references, thumbs, strict=True) if thumb]
    slot = THUMB + 10
    fits = max((image.width - 12 - label_right - 40) // slot, 0)
    x = image.width - 12 - slot
    for name, thumb in shown[:fits]:
        draw.rectangle((x - 3, 9, x + THUMB + 2, 12 + THUMB + 21), fill=PAPER, outline=INK, width=2)
        image.paste(thumb.image, (x, 12))
        caption = _fit(name.strip() or "?", font, THUMB - 4)
        draw.text((x + THUMB / 2, 12 + THUMB + 10), caption, font=font, fill=INK, anchor="mm")
        x -= slot
    if len(shown) > fits > 0:
        draw.text((x + slot - 8, 12 + THUMB / 2), f"+{len(shown) - fits}", font=font, fill=INK, anchor="rm")


class _ThumbnailCache:
    """Characters recur in scene after scene, so each reference image is decoded and shrunk once."""

    def __init__(self, size: int = 64) -> None:
        self._items: OrderedDict[str, _Thumb | None] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, reference: Reference) -> _Thumb | None:
        key = reference.key
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        thumb = _make_thumbnail(reference.image)
        with self._lock:
            self._items[key] = thumb
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return thumb


def _make_thumbnail(data: bytes) -> _Thumb | None:
    try:
        with Image.open(BytesIO(data)) as source:
            source.draft("RGB", (THUMB * 2, THUMB * 2))  # JPEG decodes at reduced size
            source.thumbnail((THUMB * 3, THUMB * 3))
            picture = _flatten(ImageOps.exif_transpose(source))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        # A reference that is not an image costs the panel its thumbnail, not the whole scene.
        return None
    # Faces sit in the upper part of character sheets, so crop towards the top.
    thumb = ImageOps.fit(picture, (THUMB, THUMB), Image.Resampling.BICUBIC, centering=(0.5, 0.3))
    tint = thumb.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    return _Thumb(image=thumb, tint=tint)


def _flatten(picture: Image.Image) -> Image.Image:
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        background = Image.new("RGB", rgba.size, PAPER)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return picture.convert("RGB")


_thumbnails = _ThumbnailCache()


def _thumbnail(reference: Reference) -> _Thumb | None:
    return _thumbnails.get(reference)
