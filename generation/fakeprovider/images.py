"""Small real PNGs, distinct per request, and the broken variants the body faults send instead."""

from __future__ import annotations

import base64
import colorsys
import io

from PIL import Image, ImageDraw

NOT_AN_IMAGE = b"<html><body>Not an image</body></html>"


def make_png(counter: int, *, width: int = 64, height: int = 64) -> bytes:
    """A PNG whose first pixel spells the counter (R, G, B = its three low bytes) on a hue it picks."""
    hue = (counter * 0.61803398875) % 1.0  # golden-ratio steps keep neighbours far apart in colour
    red, green, blue = (int(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.45, 0.9))
    image = Image.new("RGB", (width, height), (red, green, blue))
    draw = ImageDraw.Draw(image)
    draw.rectangle((width // 4, height // 4, width * 3 // 4, height * 3 // 4), outline=(30, 30, 30))
    image.putpixel((0, 0), ((counter >> 16) & 255, (counter >> 8) & 255, counter & 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def counter_of(png: bytes) -> int:
    """Read back the counter make_png wrote (tests use it to tell images apart)."""
    with Image.open(io.BytesIO(png)) as image:
        red, green, blue = image.convert("RGB").getpixel((0, 0))
    return (red << 16) | (green << 8) | blue


def fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The requested aspect ratio, scaled so the longer side is max_side pixels."""
    width, height = max(1, width), max(1, height)
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def size_from_text(size: str | None, max_side: int) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in str(size).lower().split("x"))
    except ValueError:
        return max_side, max_side
    return fit(width, height, max_side)


def size_from_ratio(ratio: str | None, max_side: int) -> tuple[int, int]:
    try:
        width, height = (float(part) for part in str(ratio).split(":"))
    except ValueError:
        return max_side, max_side
    return fit(int(width * 100), int(height * 100), max_side)


def image_bytes(png: bytes, fault: str | None) -> bytes:
    """The bytes a body fault sends in place of the image."""
    if fault == "not_image":
        return NOT_AN_IMAGE
    if fault == "truncated_image":
        return png[: len(png) // 2]
    return png


def image_base64(png: bytes, fault: str | None) -> str:
    if fault == "bad_base64":
        return "%%% this is not base64 %%%"
    return base64.b64encode(image_bytes(png, fault)).decode("ascii")
