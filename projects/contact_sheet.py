"""The contact sheet: every scene's thumbnail on one PNG, streamed strip by strip so memory stays flat."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont, ImageOps

from projects.export import (
    FILE_MISSING,
    NothingToExport,
    Row,
    image_is_stale,
    image_path,
    last_attempt_failed,
    missing_reason,
    scene_rows,
    sheet_filename,
)
from projects.images import ensure_thumbnail
from projects.models import Project

SHEET_COLUMNS = 4
CELL_WIDTH, THUMB_HEIGHT, CAPTION_HEIGHT, GAP = 320, 200, 44, 16
CELL_HEIGHT = THUMB_HEIGHT + CAPTION_HEIGHT
SHEET_WIDTH = GAP + SHEET_COLUMNS * (CELL_WIDTH + GAP)
PAPER, INK, MUTED, FRAME, MAT = "white", (31, 35, 40), (106, 111, 118), (200, 198, 192), (236, 235, 231)
ALERT = (180, 35, 24)


def sheet_marker(row: Row) -> str:
    """What a cell says over an image that is not of the scene as it stands (the page says the same)."""
    if last_attempt_failed(row):
        return "LAST ATTEMPT FAILED"
    if image_is_stale(row):
        return "PROMPT CHANGED"
    return ""


def sheet_size(scenes: int) -> tuple[int, int]:
    rows = -(-scenes // SHEET_COLUMNS)
    return SHEET_WIDTH, GAP + rows * (CELL_HEIGHT + GAP)


@dataclass(frozen=True)
class ContactSheet:
    chunks: Iterator[bytes]
    scenes: int
    filename: str
    ascii_filename: str


def project_contact_sheet(*, project: Project, now: datetime | None = None) -> ContactSheet:
    rows = scene_rows(project)
    if not rows:
        raise NothingToExport(f"“{project.title}” has no scenes yet.")
    day = timezone.localdate(now or timezone.now())
    width, height = sheet_size(len(rows))
    return ContactSheet(
        chunks=png_stream(width, height, _sheet_bands(rows)),
        scenes=len(rows),
        filename=sheet_filename(project.title, day=day),
        ascii_filename=sheet_filename(project.title, day=day, ascii_only=True),
    )


def _sheet_bands(rows: list[Row]) -> Iterator[Image.Image]:
    """The sheet as horizontal strips, one grid row each, so only one strip is ever in memory."""
    yield Image.new("RGB", (SHEET_WIDTH, GAP), PAPER)
    fonts = (
        ImageFont.load_default(size=15),
        ImageFont.load_default(size=13),
        ImageFont.load_default(size=44),
    )
    for start in range(0, len(rows), SHEET_COLUMNS):
        band = Image.new("RGB", (SHEET_WIDTH, CELL_HEIGHT + GAP), PAPER)
        draw = ImageDraw.Draw(band)
        for column, row in enumerate(rows[start : start + SHEET_COLUMNS]):
            _draw_cell(band, draw, GAP + column * (CELL_WIDTH + GAP), row, fonts)
        yield band


def _draw_cell(band: Image.Image, draw: ImageDraw.ImageDraw, x: int, row: Row, fonts: tuple) -> None:
    label, caption, big = fonts
    box = (x, 0, x + CELL_WIDTH - 1, THUMB_HEIGHT - 1)
    thumb, reason = _thumbnail(row)
    if thumb is None:
        # An empty frame with its number, so gaps in the story are visible at a glance.
        draw.rectangle(box, fill=MAT, outline=FRAME, width=2)
        middle = (x + CELL_WIDTH // 2, THUMB_HEIGHT // 2)
        draw.text(middle, str(row["position"]), fill=MUTED, font=big, anchor="mm")
        draw.text(
            (middle[0], middle[1] + 40),
            _fit(reason, caption, CELL_WIDTH - 16),
            fill=MUTED,
            font=caption,
            anchor="mm",
        )
    else:
        with thumb:
            band.paste(thumb, (x + (CELL_WIDTH - thumb.width) // 2, (THUMB_HEIGHT - thumb.height) // 2))
        draw.rectangle(box, outline=FRAME, width=1)
    heading = f"Scene {row['position']}" + (f"  {row['title']}" if row["title"] else "")
    marker = sheet_marker(row)
    if marker:
        width = int(caption.getlength(marker)) + 12
        draw.rectangle((x + CELL_WIDTH - width, 4, x + CELL_WIDTH - 4, 22), fill=ALERT)
        draw.text((x + CELL_WIDTH - width + 4, 6), marker, fill=PAPER, font=caption)
    draw.text((x, THUMB_HEIGHT + 6), _fit(heading, label, CELL_WIDTH), fill=INK, font=label)
    excerpt = " ".join(row["prompt"].split()) or "(empty prompt)"
    draw.text((x, THUMB_HEIGHT + 25), _fit(excerpt, caption, CELL_WIDTH), fill=MUTED, font=caption)


def _thumbnail(row: Row) -> tuple[Image.Image | None, str]:
    """The scene's thumbnail sized for its cell, or None and why not; one image open at a time."""
    if not row["image"]:
        return None, missing_reason(row)
    path = image_path(row["image"])
    if path is None:
        return None, FILE_MISSING
    try:
        # The cached page thumbnail (small JPEG) instead of decoding the full image every time.
        with Image.open(ensure_thumbnail(path)) as image:
            # Fit the frame either way: small images are scaled up so every cell reads the same.
            return ImageOps.contain(image.convert("RGB"), (CELL_WIDTH, THUMB_HEIGHT)), ""
    except (OSError, SyntaxError, ValueError):
        return None, "unreadable image"


def _fit(text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text.rstrip() + "..."


def png_stream(width: int, height: int, bands: Iterable[Image.Image]) -> Iterator[bytes]:
    """Encode RGB strips (top to bottom, heights summing to `height`) as one PNG, strip by strip.

    Pillow can only save a whole image, and a 300-scene sheet is ~80 MB of pixels; PNG's pixel data is a
    single zlib stream of rows, so it can be written incrementally instead.
    """
    yield b"\x89PNG\r\n\x1a\n"
    yield _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    # Level 3: the sheet is a preview; level 6 takes 2-3x as long for a somewhat smaller file.
    compressor, stride, rows = zlib.compressobj(3), width * 3, 0
    for band in bands:
        if band.mode != "RGB" or band.width != width:
            raise ValueError("Every strip must be RGB and as wide as the sheet")
        pixels = band.tobytes()
        # Filter type 0 (None) on every row: good enough for a preview and costs no per-pixel Python work.
        raw = b"".join(b"\x00" + pixels[i : i + stride] for i in range(0, len(pixels), stride))
        rows += band.height
        data = compressor.compress(raw)
        if data:
            yield _png_chunk(b"IDAT", data)
    if rows != height:
        raise ValueError(f"The strips hold {rows} rows, not {height}")
    yield _png_chunk(b"IDAT", compressor.flush())
    yield _png_chunk(b"IEND", b"")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
