"""Every endpoint under the pages' rules: outsiders get 404, weak roles 403, and a member of two projects
cannot reach project B's objects through project A's URLs."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.api.conftest import bearer
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db

P = "/api/projects/{p}"
# (name, method, path, body, weakest role allowed). Bodies are valid, so an allowed role succeeds.
ENDPOINTS = [
    ("project_get", "get", P, None, "viewer"),
    ("project_update", "patch", P, {"title": "Renamed"}, "owner"),
    ("project_delete", "delete", P, None, "owner"),
    ("project_status", "get", P + "/status", None, "viewer"),
    ("project_export_zip", "get", P + "/export.zip", None, "viewer"),
    ("member_list", "get", P + "/members", None, "viewer"),
    ("member_add", "post", P + "/members", {"username": "nadia", "role": "viewer"}, "owner"),
    ("member_update", "patch", P + "/members/{m}", {"role": "editor"}, "owner"),
    ("member_remove", "delete", P + "/members/{m}", None, "owner"),
    ("scene_list", "get", P + "/scenes", None, "viewer"),
    ("scene_create", "post", P + "/scenes", {"prompt": "A new scene"}, "editor"),
    ("scene_get", "get", P + "/scenes/{s}", None, "viewer"),
    ("scene_update", "patch", P + "/scenes/{s}", {"prompt": "Changed"}, "editor"),
    ("scene_delete", "delete", P + "/scenes/{s}", None, "editor"),
    ("scene_move", "post", P + "/scenes/{s}/move", {"position": 2}, "editor"),
    ("scene_reorder", "post", P + "/scenes/reorder", "REORDER", "editor"),
    ("story_import", "post", P + "/import", {"text": "One.\n\nTwo."}, "editor"),
    ("scene_image", "get", P + "/scenes/{s}/image", None, "viewer"),
    ("scene_attempts", "get", P + "/scenes/{s}/attempts", None, "viewer"),
    ("scene_versions", "get", P + "/scenes/{s}/versions", None, "viewer"),
    ("version_current", "post", P + "/scenes/{s}/versions/{v}/current", {}, "editor"),
    ("scene_retry", "post", P + "/scenes/{s}/retry", {}, "editor"),
    ("character_list", "get", P + "/characters", None, "viewer"),
    ("character_create", "post", P + "/characters", {"name": "Mira"}, "editor"),
    ("character_get", "get", P + "/characters/{c}", None, "viewer"),
    ("character_update", "patch", P + "/characters/{c}", {"description": "tall"}, "editor"),
    ("character_delete", "delete", P + "/characters/{c}", None, "editor"),
    ("character_reference_upload", "post", P + "/characters/{c}/reference", "FILE", "editor"),
    ("character_reference", "get", P + "/characters/{c}/reference", None, "viewer"),
    ("run_list", "get", P + "/runs", None, "viewer"),
    ("run_start", "post", P + "/runs", {}, "editor"),
    ("run_get", "get", P + "/runs/{r}", None, "viewer"),
    ("run_stop", "post", P + "/runs/{r}/stop", {}, "editor"),
    ("run_resume", "post", P + "/runs/{r}/resume", {}, "editor"),
    ("run_attempts", "get", P + "/runs/{r}/attempts", None, "viewer"),
    ("webhook_list", "get", P + "/webhooks", None, "owner"),
    ("webhook_create", "post", P + "/webhooks", {"url": "http://127.0.0.1:9/hook"}, "owner"),
    ("webhook_delete", "delete", P + "/webhooks/{w}", None, "owner"),
    ("webhook_deliveries", "get", P + "/webhooks/{w}/deliveries", None, "owner"),
    ("webhook_redeliver", "post", P + "/webhooks/deliveries/{d}/redeliver", {}, "owner"),
    ("provider_key_list", "get", P + "/provider-keys", None, "owner"),
    ("provider_key_set", "put", P + "/provider-keys/openai", {"secret": "sk-test-0123456789abcdef"}, "owner"),
    ("provider_key_delete", "delete", P + "/provider-keys/gemini", None, "owner"),
]
RANK = {"viewer": 1, "editor": 2, "owner": 3}


def send(client, method: str, path: str, body, objects):
    if body == "FILE":
        upload = SimpleUploadedFile("ref.png", png_bytes(), content_type="image/png")
        return client.post(path, {"reference": upload})
    if body == "REORDER":
        body = {"scene_ids": list(objects.project.scenes.order_by("-position").values_list("pk", flat=True))}
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, content_type="application/json")


def test_the_matrix_names_every_project_endpoint():
    from api.api import api

    schema = api.get_openapi_schema()
    operations = {
        (method, path)
        for path, item in schema["paths"].items()
        if path.startswith("/api/projects/{project_id}")
        for method in item
    }
    assert len(operations) == len(ENDPOINTS)


@pytest.mark.parametrize("role", ["owner", "editor", "viewer", "outsider"])
@pytest.mark.parametrize(
    ("name", "method", "path", "body", "needs"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS]
)
def test_each_endpoint_follows_the_role_rules(team, world, make_user, role, name, method, path, body, needs):
    make_user("nadia")
    response = send(bearer(team.user(role)), method, path.format(**world.ids()), body, world)
    if role == "outsider":
        assert response.status_code == 404, response.content
        assert response.json()["code"] == "not_found"
    elif RANK[role] < RANK[needs]:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "forbidden"
    else:
        assert 200 <= response.status_code < 300, response.content


NAMES_AN_OBJECT = [
    e for e in ENDPOINTS if any(k in e[2] for k in ("{s}", "{c}", "{r}", "{m}", "{v}", "{w}", "{d}"))
]


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "needs"), NAMES_AN_OBJECT, ids=[e[0] for e in NAMES_AN_OBJECT]
)
def test_project_a_urls_never_reach_project_b_objects(team, world, other, name, method, path, body, needs):
    both, objects_b = other
    ids = {**objects_b.ids(), "p": world.project.pk}
    response = send(bearer(both), method, path.format(**ids), body, world)
    assert response.status_code == 404, response.content


def test_a_token_limited_to_one_project_cannot_see_the_other(team, world, other):
    both, objects_b = other
    client = bearer(both, projects=[objects_b.project])
    assert client.get(f"/api/projects/{world.project.pk}").status_code == 404
    assert client.get(f"/api/projects/{objects_b.project.pk}").status_code == 200
    listed = client.get("/api/projects").json()
    assert [p["id"] for p in listed["items"]] == [objects_b.project.pk]


@pytest.mark.parametrize(("name", "method", "path", "body", "needs"), [e for e in ENDPOINTS if e[1] != "get"])
def test_a_read_only_token_cannot_write(team, world, name, method, path, body, needs):
    response = send(bearer(team.owner, read_only=True), method, path.format(**world.ids()), body, world)
    assert response.status_code == 403, response.content


def test_a_read_only_token_reads(team, world):
    assert (
        bearer(team.owner, read_only=True).get(f"/api/projects/{world.project.pk}/scenes").status_code == 200
    )
