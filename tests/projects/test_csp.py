"""Every page carries a Content-Security-Policy that allows only the studio's own files: no inline script,
no inline style, sockets only to the studio's own host."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from projects import services
from tests.conftest import png_bytes


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in parts}


class InlineCode(HTMLParser):
    """Collects what a strict policy would block: inline scripts, event-handler and style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and "src" not in names and names.get("type") != "application/json":
            self.found.append("inline <script>")
        self.found += [f"<{tag} {name}=…>" for name, _ in attrs if name.startswith("on") or name == "style"]
        self.found += [f"<{tag} {n}=javascript:…>" for n, v in attrs if (v or "").startswith("javascript:")]
        if tag == "style":
            self.found.append("<style> block")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


@pytest.fixture
def furnished(team):
    project = team.project
    gopal = services.character_save(project=project, name="Gopal", description="a jester")
    gopal.reference.save("g.png", ContentFile(png_bytes()), save=True)
    scene = services.scene_create(project=project, prompt="Gopal at dawn")
    scene.image.save("s.png", ContentFile(png_bytes()), save=True)
    scene.characters.add(gopal)
    services.scene_create(project=project, prompt="A river")
    return team, scene, gopal


def page_urls(project, scene, character) -> list[str]:
    p = project.pk
    return [
        reverse("project_list"),
        reverse("project_create"),
        reverse("project_detail", args=[p]),
        reverse("project_edit", args=[p]),
        reverse("project_delete", args=[p]),
        reverse("scene_create", args=[p]),
        reverse("scene_edit", args=[p, scene.pk]),
        reverse("story_import", args=[p]),
        reverse("character_list", args=[p]),
        reverse("character_create", args=[p]),
        reverse("character_edit", args=[p, character.pk]),
        reverse("member_list", args=[p]),
    ]


def test_every_page_has_a_strict_policy(client, furnished):
    team, scene, character = furnished
    client.force_login(team.owner)
    for url in page_urls(team.project, scene, character):
        response = client.get(url)
        assert response.status_code == 200, url
        policy = directives(response)
        assert policy["default-src"] == ["'self'"], url
        assert policy["script-src"] == ["'self'"], url
        assert policy["style-src"] == ["'self'"], url
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"], url


def test_the_login_page_has_the_policy_too(client):
    assert directives(client.get(reverse("login")))["script-src"] == ["'self'"]


@pytest.mark.parametrize(("secure", "socket"), [(False, "ws://testserver"), (True, "wss://testserver")])
def test_the_policy_lets_the_page_open_its_socket_to_its_own_host_only(client, team, secure, socket):
    client.force_login(team.viewer)
    response = client.get(reverse("project_detail", args=[team.project.pk]), secure=secure)
    assert directives(response)["connect-src"] == ["'self'", socket]


def test_no_page_has_inline_script_or_style(client, furnished):
    team, scene, character = furnished
    client.force_login(team.owner)
    for url in page_urls(team.project, scene, character):
        response = client.get(url)
        assert inline_code(response.content.decode()) == [], url
    client.logout()
    assert inline_code(client.get(reverse("login")).content.decode()) == []


def test_the_studio_page_passes_its_data_as_json_not_script(client, furnished):
    team, *_ = furnished
    client.force_login(team.viewer)
    html = client.get(reverse("project_detail", args=[team.project.pk])).content.decode()
    assert '<script id="initial-snapshot" type="application/json">' in html


def test_admin_pages_have_no_inline_script_or_style(admin_client, furnished):
    team, scene, character = furnished
    urls = [
        reverse("admin:index"),
        reverse("admin:projects_character_changelist"),
        reverse("admin:projects_character_change", args=[character.pk]),
        reverse("admin:projects_scene_change", args=[scene.pk]),
        reverse("admin:projects_project_change", args=[team.project.pk]),
    ]
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert inline_code(response.content.decode()) == [], url
