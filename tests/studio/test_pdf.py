from __future__ import annotations

import io

import pypdfium2
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import ImageStat

from projects import pdf
from projects.models import Scene
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def board(team, scenes):
    """Five scenes: 1 has a bright red image and notes; 2 failed; the rest have no image."""
    scenes[0].image.save("one.png", ContentFile(png_bytes((600, 400), color="red")), save=True)
    Scene.objects.filter(pk=scenes[0].pk).update(
        title="Dawn", notes={"shot": "wide", "dialogue": "Who goes there?"}, status="ready"
    )
    Scene.objects.filter(pk=scenes[1].pk).update(status=Scene.Status.FAILED, last_error="Blocked by safety")
    team.project.title = "The Tale of Gopal"
    team.project.save()
    return scenes


def _download(client, team, **params) -> bytes:
    client.force_login(team.viewer)
    response = client.get(reverse("project_pdf", args=[team.project.pk]), params)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    body = b"".join(response.streaming_content)
    assert len(body) == int(response["Content-Length"])
    return body


def _render(document: pypdfium2.PdfDocument, index: int):
    return document[index].render(scale=1).to_pil().convert("RGB")


def test_the_pdf_has_a_title_page_then_panels_with_the_first_image_drawn(client, team, board):
    body = _download(client, team)
    document = pypdfium2.PdfDocument(io.BytesIO(body))
    assert len(document) == 1 + 2  # title page, then 5 panels at 4 a page
    assert "The Tale of Gopal" in document[0].get_textpage().get_text_range()
    page = _render(document, 1)
    text = document[1].get_textpage().get_text_range()
    assert "1. Dawn" in text and "Shot: wide" in text and "Who goes there?" in text
    assert "FAILED" in text and "Blocked by safety" in text and "NO IMAGE" in text
    # The first panel sits top left: its image region is red, not blank paper.
    cell = pdf._cell(4, 0)
    scale = page.width / pdf.PAGE[0]
    box = (
        int(cell.x * scale) + 10,
        int((pdf.PAGE[1] - cell.y - cell.height) * scale) + 10,
        int((cell.x + cell.width) * scale) - 10,
        int((pdf.PAGE[1] - cell.y - pdf.TEXT_LINES * 12 - 18) * scale) - 10,
    )
    red, green, blue = ImageStat.Stat(page.crop(box)).mean
    assert red > 150 and green < 120 and blue < 120, (red, green, blue)


def test_panels_per_page_are_configurable_and_checked(client, team, board):
    body = _download(client, team, per_page="1")
    assert len(pypdfium2.PdfDocument(io.BytesIO(body))) == 1 + 5
    client.force_login(team.viewer)
    assert client.get(reverse("project_pdf", args=[team.project.pk]), {"per_page": "5"}).status_code == 400


def test_outsiders_get_404_for_the_pdf(client, team, board):
    client.force_login(team.outsider)
    assert client.get(reverse("project_pdf", args=[team.project.pk])).status_code == 404
