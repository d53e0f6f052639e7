"""An uploaded reference can never become a page that runs script, and the studio runs under its CSP.

The probe that found the hole uploaded a valid PNG named `portrait.html` with a script in a tEXt chunk:
it was served as text/html and the script ran in the owner's browser. Here Chromium opens such uploads.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from projects.management.commands.seed_demo import DEMO_USER
from tests.browser.conftest import log_in
from tests.projects.test_image_uploads import png_with_script

# What the tEXt chunk's script does, if it ever runs: a flag, a changed title and a dialog.
PAYLOAD = b"<html><script>window.pwned = 1; document.title = 'pwned'; alert('pwned')</script></html>"


@pytest.fixture
def owner_page(browser, studio):
    """A logged-in page of our own, outside open_project: these tests provoke CSP refusals on purpose."""
    context = browser.new_context()
    context.set_default_timeout(20_000)
    page = context.new_page()
    log_in(page, studio, DEMO_USER)
    yield page
    context.close()


def new_project(page, studio, title: str) -> str:
    page.goto(f"{studio.url}/projects/new/")
    page.fill("#id_title", title)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/projects/\d+/$"))
    return page.url


def upload_reference(page, project_url: str, name: str, filename: str) -> str:
    """Uploads through the real form; returns the reference image's URL as the studio links it."""
    page.goto(f"{project_url}characters/new/")
    page.fill("#id_name", name)
    page.set_input_files(
        "#id_reference", {"name": filename, "mimeType": "text/html", "buffer": png_with_script(PAYLOAD)}
    )
    page.click("button.primary[type=submit]")
    page.wait_for_url(re.compile(r"/characters/$"))
    thumb = page.get_by_alt_text(f"Reference for {name}").get_attribute("src")
    return thumb.split("?")[0]


@pytest.mark.parametrize("filename", ["portrait.html", "portrait.svg", "portrait.pdf"])
def test_an_uploaded_reference_with_a_script_never_runs_it(owner_page, studio, filename):
    page = owner_page
    project_url = new_project(page, studio, f"Probe {filename}")
    url = upload_reference(page, project_url, f"Mallory {filename.split('.')[1]}", filename)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    response = page.goto(f"{studio.url}{url}")

    assert response.status == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert page.evaluate("() => window.pwned") is None
    assert page.title() != "pwned" and dialogs == []
    # The image document shows the picture itself: the bytes arrived whole, as an image.
    assert page.evaluate("() => document.images.length === 1 && document.images[0].naturalWidth") == 64


def test_the_studio_page_refuses_inline_script_under_its_policy(owner_page, studio):
    page = owner_page
    refusals: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and refusals.append(m.text))
    response = page.goto(studio.project_url("demo"))
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    expect(page.locator("#live")).to_have_attribute("data-connected", "1")  # the socket works under it
    assert refusals == []  # the page itself needs nothing the policy forbids

    with page.expect_console_message(lambda m: "Content Security Policy" in m.text) as refused:
        ran = page.evaluate(
            """() => { const s = document.createElement('script'); s.textContent = 'window.inlineRan = 1';
            document.body.append(s); return window.inlineRan === 1; }"""
        )
    assert ran is False
    assert "inline script" in refused.value.text
