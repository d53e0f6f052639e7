"""The storyboard studio's tools in a real browser, in the order a director uses them: a project style,
two variations of a scene and a pick, a locked seed, a second reference view, a viewer invited by link,
three scenes regenerated together, and the PDF's first panel."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pypdfium2
from PIL import Image, ImageStat
from playwright.sync_api import Page, expect

from projects import pdf
from projects.management.commands.seed_demo import DEMO_USER
from tests.conftest import png_bytes

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
RUN_TIMEOUT_MS = 30_000
STRONG = "violet-harbour-17-lantern"


def wait_finished(page: Page) -> None:
    expect(page.locator("#run-meta")).to_have_text(re.compile(r"^Last run completed"), timeout=RUN_TIMEOUT_MS)


def set_style(page: Page, project_url: str) -> None:
    page.goto(project_url + "edit/")
    page.fill("#id_style_prefix", "Ink storyboard panel, {shot}:")
    page.fill("#id_style_suffix", "soft light")
    page.click("form button[type=submit]")
    page.wait_for_url(project_url)


def variations_and_pick(page: Page) -> None:
    tile = page.locator('.tile[data-position="1"]')
    tile.locator(".tile-tools summary").click()
    tile.locator("select[name=candidates]").select_option("2")
    tile.locator(".variations-form button").click()
    wait_finished(page)
    page.reload()
    candidates = page.locator('.tile[data-position="1"] .candidate')
    expect(candidates).to_have_count(2)
    expect(page.locator('.tile[data-position="1"] .candidate.current')).to_have_count(1)
    page.locator('.tile[data-position="1"] .candidate:not(.current) button').click()
    expect(page.locator('.tile[data-position="1"] .candidate.current')).to_have_count(1)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    grid = page.locator("#storyboard")
    first, whole = page.locator('.tile[data-position="1"]').bounding_box(), grid.bounding_box()
    with Image.open(io.BytesIO(grid.screenshot())) as shot:
        scale = shot.width / whole["width"]
        row = int((first["y"] + first["height"] - whole["y"]) * scale) + 8
        shot.crop((0, 0, shot.width, min(shot.height, row))).save(SCREENSHOTS / "grid-variations.png")


def lock_seed(page: Page) -> None:
    page.locator('.tile[data-position="1"] .tile-actions a', has_text="Edit").click()
    page.click("text=Lock seed of the current image")
    expect(page.locator("[data-locked-seed]")).to_have_text(re.compile(r"^\d+$"))


def add_reference_view(page: Page, project_url: str) -> None:
    page.goto(project_url + "characters/")
    page.locator("li.character", has_text="Gopal Bhar").locator("a", has_text="Edit").click()
    page.set_input_files(
        "input[name=image]", files=[{"name": "profile.png", "mimeType": "image/png", "buffer": png_bytes()}]
    )
    page.fill(".add-reference input[name=label]", "profile")
    page.click(".add-reference button")
    expect(page.locator("[data-extra-reference]")).to_have_count(1)


def invite_viewer(page: Page, browser, studio, project_url: str) -> None:
    page.goto(project_url + "members/")
    page.click("text=Invite by link")
    page.select_option("#id_role", "viewer")
    page.click(".invite-form button")
    link = page.locator("input.invite-link").first.input_value()
    stranger = browser.new_context()
    try:
        newcomer = stranger.new_page()
        newcomer.goto(link)
        newcomer.fill("#id_username", "newcomer")
        newcomer.fill("#id_password1", STRONG)
        newcomer.fill("#id_password2", STRONG)
        newcomer.click(".signup-form button")
        newcomer.wait_for_url(project_url)
        expect(newcomer.locator(".tile")).to_have_count(20)
        expect(newcomer.locator("#btn-start")).to_have_count(0)  # a viewer: nothing to start
    finally:
        stranger.close()


def regenerate_three(page: Page, project_url: str) -> None:
    page.goto(project_url)
    page.locator('.tile[data-position="2"] input.select-scene').click()
    page.locator('.tile[data-position="4"] input.select-scene').click(modifiers=["Shift"])
    expect(page.locator("#selection-count")).to_have_text("3 scenes selected")
    page.click("#bulk-form button[value=regenerate]")
    expect(page.locator("#progress-text")).to_have_text(
        re.compile(r"^\d+ / 3 scenes"), timeout=RUN_TIMEOUT_MS
    )
    wait_finished(page)


def check_pdf(page: Page) -> None:
    with page.expect_download() as download:
        page.click(".pdf-form button")
    body = Path(download.value.path()).read_bytes()
    document = pypdfium2.PdfDocument(io.BytesIO(body))
    assert "Royal Barber (studio)" in document[0].get_textpage().get_text_range()  # the title page
    panel_page = document[1].render(scale=1).to_pil().convert("RGB")
    panel_page.save(SCREENSHOTS / "pdf-page.png")
    cell = pdf._cell(pdf.DEFAULT_PER_PAGE, 0)
    scale = panel_page.width / pdf.PAGE[0]
    top = int((pdf.PAGE[1] - cell.y - cell.height) * scale)
    bottom = int((pdf.PAGE[1] - cell.y - pdf.TEXT_LINES * 12 - 18) * scale)
    region = panel_page.crop(
        (int(cell.x * scale) + 4, top + 4, int((cell.x + cell.width) * scale) - 4, bottom - 4)
    )
    # A drawn panel varies; blank paper (or an empty frame) is one flat colour.
    assert max(ImageStat.Stat(region).stddev) > 10
    assert document[1].get_textpage().get_text_range().startswith("Scene 1")


def test_a_director_walks_the_studio_tools(studio, open_project, browser):
    page = open_project(studio, DEMO_USER, "studio")
    project_url = studio.project_url("studio")
    set_style(page, project_url)
    variations_and_pick(page)
    lock_seed(page)
    add_reference_view(page, project_url)
    invite_viewer(page, browser, studio, project_url)
    regenerate_three(page, project_url)
    check_pdf(page)
