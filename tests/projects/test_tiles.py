"""Tiles are drawn by the server only: the page and the fragment storyboard.js fetches after an event."""

from __future__ import annotations

import json
import re

from django.urls import reverse

from generation.selectors import project_snapshot
from projects.models import Scene


def tiles(client, user, project, ids=None):
    client.force_login(user)
    url = reverse("scene_tiles", args=[project.pk]) + (f"?ids={ids}" if ids else "")
    return client.get(url)


def tile_markup(html: str) -> list[str]:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)  # new on every response
    return re.findall(r'<li class="tile.*?</li>', html, flags=re.S)


def test_the_fragment_draws_the_same_tiles_as_the_page(client, team, scenes):
    Scene.objects.filter(pk=scenes[1].pk).mark_failed(reason="The prompt was refused")
    client.force_login(team.editor)
    page = client.get(reverse("project_detail", args=[team.project.pk])).content.decode()
    fragment = tiles(client, team.editor, team.project).content.decode()
    assert tile_markup(fragment) and tile_markup(fragment) == tile_markup(page)
    assert "The prompt was refused" in fragment


def test_only_the_asked_tiles_come_back_with_the_projects_totals(client, team, scenes):
    Scene.objects.filter(pk=scenes[0].pk).mark_ready(image="projects/1/scenes/a.png")
    response = tiles(client, team.viewer, team.project, ids=f"{scenes[0].pk},{scenes[2].pk},x")
    shown = re.findall(r'data-scene="(\d+)"', response.content.decode())
    assert shown == [str(scenes[0].pk), str(scenes[2].pk)]
    assert json.loads(response["X-Project-Totals"]) == {
        "scenes": 5,
        "images": 1,
        "failed": 0,
        "pending": 4,
        "empty": 0,
    }


def test_non_members_get_no_tiles(client, team, scenes):
    assert tiles(client, team.outsider, team.project).status_code == 404


def test_each_tile_carries_the_version_the_snapshot_names(client, team, scenes):
    html = tiles(client, team.viewer, team.project).content.decode()
    versions = re.findall(r'data-version="([^"]+)"', html)
    assert versions == [s["version"] for s in project_snapshot(project_id=team.project.pk)["scenes"]]


def test_the_page_tells_its_script_whether_to_poll(client, team, scenes, settings):
    client.force_login(team.viewer)
    page = client.get(reverse("project_detail", args=[team.project.pk])).content.decode()
    config = json.loads(re.search(r'id="live-config" type="application/json">(.*?)</script>', page).group(1))
    assert config["poll_seconds"] and config["tiles"] == reverse("scene_tiles", args=[team.project.pk])
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"}}
    page = client.get(reverse("project_detail", args=[team.project.pk])).content.decode()
    config = json.loads(re.search(r'id="live-config" type="application/json">(.*?)</script>', page).group(1))
    assert config["poll_seconds"] is None
