"""The permission matrix: every project URL against anonymous, outsider, viewer, editor and owner."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from projects import services
from tests.conftest import png_bytes

VIEW = {"anonymous": "login", "outsider": 404, "viewer": 200, "editor": 200, "owner": 200}
EDIT = {"anonymous": "login", "outsider": 404, "viewer": 403, "editor": 200, "owner": 200}
OWN = {"anonymous": "login", "outsider": 404, "viewer": 403, "editor": 403, "owner": 200}


@pytest.fixture
def world(team):
    scene = services.scene_create(project=team.project, prompt="Gopal walks")
    scene.image.save("s.png", ContentFile(png_bytes()), save=True)
    character = services.character_save(project=team.project, name="Gopal")
    character.reference.save("r.png", ContentFile(png_bytes()), save=True)
    return team, scene, character


def _urls(project, scene, character):
    p, s, c = project.pk, scene.pk, character.pk
    return [
        ("get", reverse("project_detail", args=[p]), VIEW),
        ("get", reverse("character_list", args=[p]), VIEW),
        ("get", reverse("member_list", args=[p]), VIEW),
        ("get", reverse("scene_image", args=[p, s]), VIEW),
        ("get", reverse("scene_image", args=[p, s]) + "?thumb=1", VIEW),
        ("get", reverse("character_reference", args=[p, c]), VIEW),
        ("get", reverse("scene_create", args=[p]), EDIT),
        ("get", reverse("scene_edit", args=[p, s]), EDIT),
        ("get", reverse("story_import", args=[p]), EDIT),
        ("get", reverse("character_create", args=[p]), EDIT),
        ("get", reverse("character_edit", args=[p, c]), EDIT),
        ("get", reverse("project_edit", args=[p]), OWN),
        ("get", reverse("project_delete", args=[p]), OWN),
    ]


@pytest.mark.parametrize("who", ["anonymous", "outsider", "viewer", "editor", "owner"])
def test_every_page_and_image_checks_membership_and_role(client, world, who):
    team, scene, character = world
    if who != "anonymous":
        client.force_login(team.user(who))
    for method, url, expected in _urls(team.project, scene, character):
        response = getattr(client, method)(url)
        want = expected[who]
        if want == "login":
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
        else:
            assert response.status_code == want, f"{who} {url} -> {response.status_code}"


@pytest.mark.parametrize(
    ("who", "status"), [("outsider", 404), ("viewer", 403), ("editor", 302), ("owner", 302)]
)
def test_posting_changes_needs_the_editor_role(client, world, who, status):
    team, scene, _ = world
    client.force_login(team.user(who))
    url = reverse("scene_delete", args=[team.project.pk, scene.pk])
    assert client.post(url).status_code == status
    assert team.project.scenes.exists() is (status != 302)


@pytest.mark.parametrize(
    ("who", "status"), [("outsider", 404), ("viewer", 404), ("editor", 404), ("owner", 302)]
)
def test_only_owners_add_members(client, world, make_user, who, status):
    team, _, _ = world
    make_user("newbie")
    client.force_login(team.user(who))
    response = client.post(
        reverse("member_list", args=[team.project.pk]), {"username": "newbie", "role": "viewer"}
    )
    assert response.status_code == status
    assert team.project.memberships.filter(user__username="newbie").exists() is (status == 302)


def test_a_scene_of_another_project_is_404_even_for_a_member(client, world, make_user):
    team, scene, _ = world
    other = services.project_create(title="Other", user=make_user("x"))
    client.force_login(team.owner)
    assert client.get(reverse("scene_image", args=[other.pk, scene.pk])).status_code == 404
    assert client.get(reverse("scene_edit", args=[team.project.pk + 999, scene.pk])).status_code == 404


def test_my_projects_lists_only_projects_i_belong_to(client, world, make_user):
    team, _, _ = world
    services.project_create(title="Secret plans", user=make_user("z"))
    client.force_login(team.viewer)
    body = client.get(reverse("project_list")).content.decode()
    assert "The Tale" in body and "Secret plans" not in body


def test_the_last_owner_cannot_be_removed_or_demoted(client, world):
    team, _, _ = world
    membership = team.project.memberships.get(user=team.owner)
    client.force_login(team.owner)
    url = reverse("member_update", args=[team.project.pk, membership.pk])
    client.post(url, {"action": "remove"})
    client.post(url, {"role": "viewer"})
    membership.refresh_from_db()
    assert membership.role == "owner"
