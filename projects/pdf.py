"""The storyboard as a PDF to hand off: a title page, then the panels in story order, N to a page.

Made with reportlab. Each panel draws the scene's cached thumbnail (a small JPEG), so the document stays
small and memory stays bounded however many scenes there are; the PDF is written to a spooled temporary
file (on disk past a few megabytes) and streamed from there.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from django.utils import timezone
from reportlab.lib.colors import Color, HexColor
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from projects.export import (
    NothingToExport,
    Row,
    ascii_slug,
    image_path,
    missing_reason,
    scene_rows,
    title_slug,
)
from projects.images import ensure_thumbnail
from projects.models import Project, Scene
from projects.notes import NOTE_LABELS

PER_PAGE_CHOICES = (1, 2, 4, 6)
DEFAULT_PER_PAGE = 4
GRIDS = {1: (1, 1), 2: (2, 1), 4: (2, 2), 6: (3, 2)}  # columns, rows
PAGE = landscape(A4)
MARGIN, GAP, TEXT_LINES = 36, 18, 5
INK, MUTED, FRAME, MAT = HexColor("#1f2328"), HexColor("#6a6f76"), HexColor("#c8c6c0"), HexColor("#ecebe7")
FAILED = Color(0.75, 0.2, 0.15)
SPOOL_BYTES = 4 * 1024 * 1024
FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)


def _font() -> str:
    """A TrueType font with wide script coverage when the system has one, else reportlab's own Vera."""
    if "StudioSans" not in pdfmetrics.getRegisteredFontNames():
        candidates = [Path(f) for f in FONT_FILES if Path(f).is_file()]
        pdfmetrics.registerFont(TTFont("StudioSans", str(candidates[0]) if candidates else "Vera.ttf"))
    return "StudioSans"


@dataclass(frozen=True)
class StoryboardPdf:
    file: IO[bytes]
    size: int
    pages: int
    filename: str
    ascii_filename: str


def pdf_filename(title: str, *, day, ascii_only: bool = False) -> str:
    slug = ascii_slug(title) if ascii_only else title_slug(title)
    return f"{slug}_storyboard_{day.isoformat()}.pdf"


def project_pdf(
    *, project: Project, per_page: int = DEFAULT_PER_PAGE, now: datetime | None = None
) -> StoryboardPdf:
    if per_page not in PER_PAGE_CHOICES:
        raise ValueError(f"Panels per page: one of {', '.join(map(str, PER_PAGE_CHOICES))}")
    rows = scene_rows(project)
    if not rows:
        raise NothingToExport(f"“{project.title}” has no scenes yet.")
    now = now or timezone.now()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # the response closes it
    canvas = Canvas(spool, pagesize=PAGE, pageCompression=1)
    canvas.setTitle(f"{project.title}: storyboard")
    canvas.setCreator("Scene Studio")
    font = _font()
    _title_page(canvas, project, rows, now, font)
    pages = 1
    for start in range(0, len(rows), per_page):
        canvas.showPage()
        pages += 1
        for index, row in enumerate(rows[start : start + per_page]):
            _panel(canvas, _cell(per_page, index), row, font)
        _footer(canvas, project.title, pages, font)
    canvas.save()
    size = spool.tell()
    spool.seek(0)
    day = timezone.localdate(now)
    return StoryboardPdf(
        file=spool,
        size=size,
        pages=pages,
        filename=pdf_filename(project.title, day=day),
        ascii_filename=pdf_filename(project.title, day=day, ascii_only=True),
    )


def _title_page(canvas: Canvas, project: Project, rows: list[Row], now: datetime, font: str) -> None:
    width, height = PAGE
    canvas.setFillColor(INK)
    canvas.setFont(font, 30)
    y = height * 0.62
    for line in simpleSplit(project.title, font, 30, width - 2 * MARGIN)[:3]:
        canvas.drawCentredString(width / 2, y, line)
        y -= 38
    canvas.setFont(font, 12)
    canvas.setFillColor(MUTED)
    generated = sum(1 for row in rows if row["image"])
    lines = [
        f"Storyboard · {len(rows)} scenes ({generated} with images) · {timezone.localdate(now).isoformat()}",
        *simpleSplit(project.description, font, 12, width - 4 * MARGIN)[:4],
    ]
    if project.style_prefix or project.style_suffix:
        style = " … ".join(part for part in (project.style_prefix, project.style_suffix) if part)
        lines += simpleSplit(f"Style: {style}", font, 12, width - 4 * MARGIN)[:3]
    for line in lines:
        y -= 20
        canvas.drawCentredString(width / 2, y, line)


@dataclass(frozen=True)
class Cell:
    x: float
    y: float  # bottom
    width: float
    height: float


def _cell(per_page: int, index: int) -> Cell:
    columns, rows = GRIDS[per_page]
    width = (PAGE[0] - 2 * MARGIN - (columns - 1) * GAP) / columns
    height = (PAGE[1] - 2 * MARGIN - 14 - (rows - 1) * GAP) / rows
    column, row = index % columns, index // columns
    x = MARGIN + column * (width + GAP)
    y = PAGE[1] - MARGIN - (row + 1) * height - row * GAP
    return Cell(x, y, width, height)


def _panel(canvas: Canvas, cell: Cell, row: Row, font: str) -> None:
    text_height = TEXT_LINES * 12 + 18
    image_box = Cell(cell.x, cell.y + text_height, cell.width, cell.height - text_height)
    picture = _picture(row)
    if picture is None:
        _missing(canvas, image_box, row, font)
    else:
        _draw_fitted(canvas, picture, image_box)
    canvas.setStrokeColor(FRAME)
    canvas.rect(image_box.x, image_box.y, image_box.width, image_box.height, stroke=1, fill=0)
    heading = f"{row['position']}. {row['title']}" if row["title"] else f"Scene {row['position']}"
    canvas.setFillColor(INK)
    canvas.setFont(font, 11)
    top = cell.y + text_height - 14
    canvas.drawString(cell.x, top, _fit(heading, font, 11, cell.width))
    canvas.setFont(font, 8.5)
    canvas.setFillColor(MUTED)
    lines = _panel_lines(row, font, cell.width)
    for number, line in enumerate(lines[:TEXT_LINES]):
        canvas.drawString(cell.x, top - 12 * (number + 1), line)


def _panel_lines(row: Row, font: str, width: float) -> list[str]:
    notes = row.get("notes") or {}
    facts = [f"{NOTE_LABELS[k]}: {notes[k]}" for k in ("shot", "camera", "duration") if notes.get(k)]
    lines = [_fit(" · ".join(facts), font, 8.5, width)] if facts else []
    if notes.get("dialogue"):
        lines += simpleSplit(f"“{notes['dialogue']}”", font, 8.5, width)[:2]
    lines += simpleSplit(" ".join(row["prompt"].split()) or "(empty prompt)", font, 8.5, width)
    return lines


def _picture(row: Row) -> ImageReader | None:
    if not row["image"]:
        return None
    path = image_path(row["image"])
    if path is None:
        return None
    try:
        return ImageReader(str(ensure_thumbnail(path)))
    except (OSError, SyntaxError, ValueError):
        return None


def _draw_fitted(canvas: Canvas, picture: ImageReader, box: Cell) -> None:
    width, height = picture.getSize()
    scale = min(box.width / width, box.height / height)
    drawn_w, drawn_h = width * scale, height * scale
    x, y = box.x + (box.width - drawn_w) / 2, box.y + (box.height - drawn_h) / 2
    canvas.drawImage(picture, x, y, drawn_w, drawn_h)


def _missing(canvas: Canvas, box: Cell, row: Row, font: str) -> None:
    """A tinted frame with the number and why there is no image: gaps show at a glance."""
    failed = row["status"] == Scene.Status.FAILED
    canvas.setFillColor(MAT)
    canvas.rect(box.x, box.y, box.width, box.height, stroke=0, fill=1)
    canvas.setFillColor(FAILED if failed else MUTED)
    canvas.setFont(font, 12)
    label = "FAILED" if failed else "NO IMAGE"
    middle = box.y + box.height / 2
    canvas.drawCentredString(box.x + box.width / 2, middle + 6, f"{label} · scene {row['position']}")
    canvas.setFont(font, 9)
    canvas.drawCentredString(
        box.x + box.width / 2, middle - 12, _fit(missing_reason(row), font, 9, box.width - 12)
    )


def _footer(canvas: Canvas, title: str, page: int, font: str) -> None:
    canvas.setFont(font, 8)
    canvas.setFillColor(MUTED)
    canvas.drawString(MARGIN, MARGIN / 2, _fit(title, font, 8, PAGE[0] / 2))
    canvas.drawRightString(PAGE[0] - MARGIN, MARGIN / 2, f"Page {page}")


def _fit(text: str, font: str, size: float, width: float) -> str:
    if pdfmetrics.stringWidth(text, font, size) <= width:
        return text
    while text and pdfmetrics.stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def pages_for(scenes: int, per_page: int) -> int:
    return 1 + math.ceil(scenes / per_page)
