"""Issue 14's walk in a real browser: the viewer, drag-and-drop and keyboard reordering, delete
confirmations, contrast, the snackbar's place and the empty grid. Each test makes its own project, so the
shared demo projects stay as the other browser tests expect them."""

from __future__ import annotations

import itertools
import re

from playwright.sync_api import Page, expect

from projects.management.commands.seed_demo import DEMO_USER
from tests.browser.conftest import wait_connected

RUN_TIMEOUT_MS = 30_000
_names = itertools.count(1)

COLORS_JS = """([selector, backgroundSelector]) => {
  const fg = getComputedStyle(document.querySelector(selector));
  const bg = getComputedStyle(document.querySelector(backgroundSelector));
  return {color: fg.color, background: bg.backgroundColor, size: fg.fontSize};
}"""


def new_project(page: Page, studio, prompts: list[str]) -> str:
    """A project of the demo user's with these scenes (an empty prompt makes an empty scene)."""
    page.goto(f"{studio.url}/projects/new/")
    page.fill("#id_title", f"Walk {next(_names)}")
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/projects/\d+/$"))
    url = page.url
    for prompt in prompts:
        page.goto(url + "scenes/new/")
        page.fill("#id_prompt", prompt)
        page.click("form button.primary")
        page.wait_for_url(url)
    wait_connected(page)
    return url


def generate(page: Page) -> None:
    page.click("#btn-start")
    expect(page.locator("#run-meta")).to_have_text(re.compile(r"^Last run completed"), timeout=RUN_TIMEOUT_MS)


def order(page: Page) -> list[str]:
    return page.eval_on_selector_all(".tile .num", "nodes => nodes.map(n => n.textContent)")


def scene_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all(".tile", "nodes => nodes.map(n => n.dataset.scene)")


def luminance(css: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])

    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(page: Page, selector: str, background: str) -> float:
    colors = page.evaluate(COLORS_JS, [selector, background])
    light, dark = sorted((luminance(colors["color"]), luminance(colors["background"])), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_a_thumbnail_opens_a_viewer_with_versions_and_the_keyboard_walks_the_scenes(studio, open_project):
    page = open_project(studio, DEMO_USER, "demo")
    new_project(page, studio, ["A lantern at dusk", "A bridge in fog", "A goat on a roof"])
    generate(page)
    page.get_by_role("button", name="Regenerate Scene 1").click()
    expect(page.locator("#run-meta")).to_have_text(re.compile(r"^Running|^Last run"))
    expect(page.locator("#snackbar")).to_have_text(
        "Successfully generated the one scene!", timeout=RUN_TIMEOUT_MS
    )

    page.locator(".tile").first.locator(".thumb img").click()
    viewer = page.locator("#viewer")
    expect(viewer).to_be_visible()
    expect(viewer.locator("#viewer-title")).to_have_text("Scene 1")
    expect(viewer.locator(".viewer-versions li")).to_have_count(2)  # both versions, side by side
    expect(viewer.locator(".viewer-versions li.current")).to_have_count(1)
    page.wait_for_function("() => document.querySelector('.viewer-main').naturalWidth > 0")

    page.keyboard.press("ArrowRight")
    expect(viewer.locator("#viewer-title")).to_have_text("Scene 2")
    expect(viewer.locator(".viewer-versions li")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    focused = page.evaluate(
        "document.activeElement.closest('.tile') && document.activeElement.closest('.tile').id"
    )
    assert focused == page.locator(".tile").nth(1).get_attribute("id"), (
        "focus returns to the scene's thumbnail"
    )


def focused_tile(page: Page) -> str | None:
    return page.evaluate("(document.activeElement.closest('.tile') || {}).id || null")


def test_the_viewer_keeps_its_place_when_the_grid_is_redrawn_under_it(studio, open_project):
    """A teammate's new scene redraws every tile while the viewer is open: the arrows still walk on from
    the scene on show, and Esc still returns focus to its thumbnail, not to whichever element opened it."""
    page = open_project(studio, DEMO_USER, "demo")
    url = new_project(page, studio, ["A kite over dunes", "A well at noon", "A lamp in rain"])
    generate(page)
    page.locator(".tile").first.locator(".thumb img").click()
    viewer = page.locator("#viewer")
    expect(viewer.locator("#viewer-title")).to_have_text("Scene 1")
    page.keyboard.press("ArrowRight")
    expect(viewer.locator("#viewer-title")).to_have_text("Scene 2")
    before = page.locator(".tile").nth(1).element_handle()

    teammate = page.context.new_page()
    teammate.goto(url + "scenes/new/")
    teammate.fill("#id_prompt", "A late addition")
    teammate.click("form button.primary")
    teammate.wait_for_url(url)
    teammate.close()
    expect(page.locator(".tile")).to_have_count(4)
    page.wait_for_function("tile => !tile.isConnected", arg=before)  # the tiles were redrawn

    page.keyboard.press("ArrowRight")
    expect(viewer.locator("#viewer-title")).to_have_text("Scene 3")
    page.keyboard.press("ArrowLeft")
    expect(viewer.locator("#viewer-title")).to_have_text("Scene 2")
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    assert focused_tile(page) == page.locator(".tile").nth(1).get_attribute("id"), (
        "focus returns to the thumbnail of the scene on show"
    )


def test_tiles_reorder_by_drag_and_drop_and_by_keyboard(studio, open_project):
    page = open_project(studio, DEMO_USER, "demo")
    new_project(page, studio, ["First", "Second", "Third"])
    first, second, third = scene_ids(page)

    source = page.locator(f'.tile[data-scene="{first}"]')
    target = page.locator(f'.tile[data-scene="{third}"]')
    box = target.bounding_box()
    source.drag_to(target, target_position={"x": box["width"] - 5, "y": 20})
    expect(page.locator(".messages")).to_have_text("Moved scene 1 to position 3 (the last).")
    assert scene_ids(page) == [second, third, first]
    assert order(page) == ["Scene 1", "Scene 2", "Scene 3"]

    page.get_by_role("button", name="Move scene 1 later").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_have_text("Moved scene 1 to position 2.")
    assert scene_ids(page) == [third, second, first]


def test_deleting_a_scene_asks_first(studio, open_project):
    page = open_project(studio, DEMO_USER, "demo")
    url = new_project(page, studio, ["Keep me", "Delete me"])
    page.get_by_role("link", name="Edit scene 2").click()
    page.get_by_role("link", name="Delete scene…").click()
    expect(page.locator("h1")).to_have_text("Delete “scene 2”?")
    page.get_by_role("link", name="Cancel").click()
    page.goto(url)
    expect(page.locator(".tile")).to_have_count(2)
    page.get_by_role("link", name="Edit scene 2").click()
    page.get_by_role("link", name="Delete scene…").click()
    page.get_by_role("button", name="Delete").click()
    expect(page.locator(".messages")).to_contain_text("Deleted scene 2")
    expect(page.locator(".tile")).to_have_count(1)


def test_badges_and_the_user_name_are_readable_and_the_snackbar_covers_no_button(studio, open_project):
    page = open_project(studio, DEMO_USER, "demo")
    new_project(page, studio, [])
    empty, grid = page.locator("#storyboard > .empty"), page.locator("#storyboard")
    assert abs(empty.bounding_box()["width"] - grid.bounding_box()["width"]) < 2, "the message spans the grid"

    page.set_viewport_size({"width": 1000, "height": 700})
    new_project(page, studio, ["A kite", "A well", "A cart", "A drum", "A bell", ""])
    generate(page)
    expect(page.locator("#snackbar")).to_be_visible()
    for selector, background in [
        ('.tile[data-status="ready"] .badge.status', '.tile[data-status="ready"] .badge.status'),
        ('.tile[data-status="skipped"] .badge.status', '.tile[data-status="skipped"] .badge.status'),
        (".topbar .user-name", ".topbar"),
    ]:
        ratio = contrast(page, selector, background)
        assert ratio >= 4.5, f"{selector}: contrast {ratio:.2f}:1 is below 4.5:1"

    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    bar = page.locator("#snackbar").bounding_box()
    for tile in page.locator(".tile").all()[-3:]:
        actions = tile.locator(".tile-actions").bounding_box()
        overlap = not (
            actions["y"] + actions["height"] <= bar["y"]
            or bar["y"] + bar["height"] <= actions["y"]
            or actions["x"] + actions["width"] <= bar["x"]
            or bar["x"] + bar["width"] <= actions["x"]
        )
        assert not overlap, f"the snackbar {bar} covers a tile's buttons {actions}"
    expect(page.get_by_role("link", name="Edit scene 6")).to_have_count(1)
