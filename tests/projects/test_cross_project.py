"""A member of BOTH projects asks project A's URLs with project B's object ids: every lookup must stay in A.

A non-member is refused before any object is looked up, so only a member of both projects shows whether
each view really scopes its lookup to the project in the URL.
"""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from generation import urls as generation_urls
from generation.models import BatchRun, SceneVersion
from projects import services
from projects import urls as project_urls
from projects.models import Membership, Role
from tests.conftest import png_bytes

# name -> (method, needed role in project A, kwargs naming objects that live in B)
OBJECT_URLS = {
    "scene_edit": ("get", Role.EDITOR, ["scene"]),
    "scene_delete": ("post", Role.EDITOR, ["scene"]),
    "scene_move": ("post", Role.EDITOR, ["scene"]),
    "scene_image": ("get", Role.VIEWER, ["scene"]),
    "character_edit": ("get", Role.EDITOR, ["character"]),
    "character_delete": ("post", Role.EDITOR, ["character"]),
    "character_reference": ("get", Role.VIEWER, ["character"]),
    "member_update": ("post", Role.OWNER, ["member"]),
    "version_image": ("get", Role.VIEWER, ["scene", "version"]),
    "scene_versions": ("get", Role.VIEWER, ["scene"]),
    "version_make_current": ("post", Role.EDITOR, ["scene", "version"]),
}


def _project_with_objects(title: str, owner) -> dict:
    project = services.project_create(title=title, user=owner)
    scene = services.scene_create(project=project, prompt=f"{title} scene")
    scene.image.save("s.png", ContentFile(png_bytes()), save=True)
    character = services.character_save(project=project, name=f"{title} hero")
    character.reference.save("r.png", ContentFile(png_bytes()), save=True)
    version = SceneVersion.objects.create(scene=scene, number=1, image=scene.image.name)
    return {
        "project": project,
        "scene": scene,
        "character": character,
        "version": version,
        "member": project.memberships.get(user=owner),
    }


@pytest.fixture(params=[("owner", "viewer"), ("viewer", "owner")], ids=["owner-of-A", "viewer-of-A"])
def both(request, make_user):
    """Bea is a member of A and of B with the roles given; A and B each have one object of every kind."""
    role_a, role_b = request.param
    a = _project_with_objects("Alpha", make_user("ann"))
    b = _project_with_objects("Beta", make_user("ben"))
    bea = make_user("bea")
    Membership.objects.create(project=a["project"], user=bea, role=role_a)
    Membership.objects.create(project=b["project"], user=bea, role=role_b)
    return bea, Membership(role=role_a), a, b


def _url(name: str, project_id: int, objects: dict, ids_from_b: list[str], b: dict) -> str:
    kwargs = {"project_id": project_id}
    for kind in ("scene", "character", "version", "member"):
        if f"{kind}_id" in _kwargs_of(name):
            kwargs[f"{kind}_id"] = (b if kind in ids_from_b else objects)[kind].pk
    return reverse(name, kwargs=kwargs)


def _kwargs_of(name: str) -> set[str]:
    return set(_object_patterns()[name])


def _object_patterns() -> dict[str, list[str]]:
    """Every named URL that takes an object id besides the project's."""
    found = {}
    for pattern in [*project_urls.urlpatterns, *generation_urls.urlpatterns]:
        if pattern.name:
            kwargs = [k for k in pattern.pattern.converters if k != "project_id"]
            if kwargs and "action" not in kwargs:
                found[pattern.name] = kwargs
    return found


def test_the_table_covers_every_url_that_takes_an_object_id():
    assert set(_object_patterns()) == set(OBJECT_URLS)


@pytest.mark.parametrize("name", sorted(OBJECT_URLS))
def test_project_a_urls_with_project_b_ids_are_404(client, both, name):
    bea, membership_a, a, b = both
    method, needs, ids_from_b = OBJECT_URLS[name]
    client.force_login(bea)
    url = _url(name, a["project"].pk, a, ids_from_b, b)
    response = getattr(client, method)(url, {"to": "1", "role": "viewer"} if method == "post" else {})
    # A role too weak for the page is refused before any lookup; a strong enough one must not find B's object.
    expected = 404 if membership_a.allows(needs) else 403
    assert response.status_code == expected, f"{url} -> {response.status_code}"
    assert b["project"].scenes.filter(pk=b["scene"].pk).exists()
    assert b["project"].characters.filter(pk=b["character"].pk).exists()
    assert b["project"].memberships.get(user__username="ben").role == Role.OWNER


def test_a_version_of_another_project_under_a_scene_of_this_one_is_404(client, both):
    bea, _, a, b = both
    client.force_login(bea)
    url = reverse("version_image", args=[a["project"].pk, a["scene"].pk, b["version"].pk])
    assert client.get(url).status_code == 404


def test_retrying_a_scene_of_another_project_is_404_and_starts_nothing(client, both):
    bea, membership_a, a, b = both
    client.force_login(bea)
    url = reverse("run_action", args=[a["project"].pk, "retry"])
    response = client.post(url, {"scene": b["scene"].pk})
    assert response.status_code == (404 if membership_a.allows(Role.EDITOR) else 403)
    assert not BatchRun.objects.exists()
