"""Staff who are not superusers act in the admin only on their projects, and only as their role allows.

Sam is staff with every model permission of the studio, as a careless grant would give; only his project
roles may limit him. Every write is tried as a crafted POST, not only through the choices offered.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db.models.fields.files import FieldFile
from django.urls import reverse

from generation.models import BatchRun
from projects import services
from projects.models import Character, Membership, Project, Role, Scene


@pytest.fixture
def sam(make_user):
    user = make_user("sam")
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["projects", "generation"])
    )
    return user


@pytest.fixture
def world(team, sam, make_user):
    """Sam's project A (role set per test), project B he is not in, and C where he is an editor."""
    a = team.project
    a_scene = services.scene_create(project=a, prompt="Alpha scene")
    a_hero = services.character_save(project=a, name="Alpha hero")
    b = services.project_create(title="Bravo secret", user=make_user("bob"))
    b_scene = services.scene_create(project=b, prompt="Bravo scene")
    b_hero = services.character_save(project=b, name="Bravo spy")
    c = services.project_create(title="Charlie", user=make_user("cid"))
    c_hero = services.character_save(project=c, name="Charlie clown")
    Membership.objects.create(project=c, user=sam, role=Role.EDITOR)
    return {"a": a, "a_scene": a_scene, "a_hero": a_hero, "b": b, "b_scene": b_scene, "b_hero": b_hero,
            "c": c, "c_hero": c_hero}  # fmt: skip


def as_member(client, sam, project, role):
    Membership.objects.update_or_create(project=project, user=sam, defaults={"role": role})
    client.force_login(sam)
    return client


def form_data(response) -> dict:
    """What the browser would post back for the admin form on the page, unchanged."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    for form in forms:
        for field in form:
            value = field.value()
            if value is None or value is False or isinstance(value, FieldFile):
                continue
            data[field.html_name] = value
    return data


def scene_post(**changes) -> dict:
    data = {"position": "7", "title": "", "prompt": "planted", "status": "pending", "last_error": ""}
    data.update({"attempts-TOTAL_FORMS": "0", "attempts-INITIAL_FORMS": "0"})
    return {**data, **changes}


# ---- choices -------------------------------------------------------------------------------------------


def test_the_scene_form_offers_only_projects_and_characters_the_user_may_edit(client, sam, world):
    as_member(client, sam, world["a"], Role.EDITOR)
    response = client.get(reverse("admin:projects_scene_add"))
    form = response.context["adminform"].form
    assert set(form.fields["project"].queryset) == {world["a"], world["c"]}
    assert set(form.fields["characters"].queryset) == {world["a_hero"], world["c_hero"]}
    body = response.content.decode()
    assert "Bravo secret" not in body and "Bravo spy" not in body


def test_a_scenes_change_form_offers_only_its_own_projects_characters(client, sam, world):
    as_member(client, sam, world["a"], Role.EDITOR)
    response = client.get(reverse("admin:projects_scene_change", args=[world["a_scene"].pk]))
    assert set(response.context["adminform"].form.fields["characters"].queryset) == {world["a_hero"]}


@pytest.mark.parametrize(
    "name",
    [
        "admin:projects_scene_changelist",
        "admin:projects_character_changelist",
        "admin:generation_batchrun_changelist",
    ],
)
def test_list_filters_show_only_the_users_projects(client, sam, world, name):
    for project in (world["a"], world["b"]):
        BatchRun.objects.create(project=project, provider="sketch", status="completed")
    as_member(client, sam, world["a"], Role.VIEWER)
    body = client.get(reverse(name)).content.decode()
    assert "The Tale" in body and "Bravo secret" not in body


def test_member_choices_are_members_of_the_users_projects_not_every_user(client, sam, world, make_user):
    make_user("stranger")
    as_member(client, sam, world["a"], Role.OWNER)
    response = client.get(reverse("admin:projects_project_change", args=[world["a"].pk]))
    (inline,) = response.context["inline_admin_formsets"]
    users = {u.username for u in inline.formset.forms[0].fields["user"].queryset}
    assert {"olivia", "eddie", "vera", "sam", "cid"} <= users  # members of A and of C
    assert not users & {"stranger", "bob", "oscar"}
    assert "stranger" not in response.content.decode()


# ---- writes into another project -----------------------------------------------------------------------


def test_a_crafted_post_cannot_create_a_scene_in_another_project(client, sam, world):
    as_member(client, sam, world["a"], Role.OWNER)
    response = client.post(reverse("admin:projects_scene_add"), scene_post(project=world["b"].pk))
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert list(world["b"].scenes.all()) == [world["b_scene"]]


def test_a_crafted_post_cannot_create_a_character_in_another_project(client, sam, world):
    as_member(client, sam, world["a"], Role.OWNER)
    data = {"project": world["b"].pk, "name": "Mole", "aliases": "", "description": ""}
    client.post(reverse("admin:projects_character_add"), data)
    assert not Character.objects.filter(name="Mole").exists()


def test_a_scene_cannot_be_moved_to_another_project(client, sam, world):
    as_member(client, sam, world["a"], Role.OWNER)
    url = reverse("admin:projects_scene_change", args=[world["a_scene"].pk])
    # At a free position in B, so only the refusal of the move can stop it.
    data = {**form_data(client.get(url)), "project": world["b"].pk, "position": "99"}
    client.post(url, data)
    world["a_scene"].refresh_from_db()
    assert world["a_scene"].project_id == world["a"].pk


@pytest.mark.parametrize("hero", ["b_hero", "c_hero"])
def test_a_character_of_another_project_cannot_be_linked_to_a_scene(client, sam, world, hero):
    # B: a project Sam is not in; C: one he edits, whose characters still do not belong in A's scenes.
    as_member(client, sam, world["a"], Role.OWNER)
    url = reverse("admin:projects_scene_change", args=[world["a_scene"].pk])
    data = {**form_data(client.get(url)), "characters": [world[hero].pk]}
    response = client.post(url, data)
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert not world["a_scene"].characters.exists()


def test_an_editor_can_still_edit_a_scene_and_link_its_projects_character(client, sam, world):
    as_member(client, sam, world["a"], Role.EDITOR)
    url = reverse("admin:projects_scene_change", args=[world["a_scene"].pk])
    data = {**form_data(client.get(url)), "prompt": "edited", "characters": [world["a_hero"].pk]}
    assert client.post(url, data).status_code == 302
    world["a_scene"].refresh_from_db()
    assert world["a_scene"].prompt == "edited" and list(world["a_scene"].characters.all()) == [
        world["a_hero"]
    ]


# ---- roles ---------------------------------------------------------------------------------------------


def test_a_viewer_cannot_change_or_delete_a_scene(client, sam, world):
    as_member(client, sam, world["a"], Role.VIEWER)
    url = reverse("admin:projects_scene_change", args=[world["a_scene"].pk])
    page = client.get(url)
    assert page.status_code == 200 and "adminform" in page.context
    assert not page.context["has_change_permission"]
    assert client.post(url, scene_post(project=world["a"].pk, prompt="vandal")).status_code == 403
    delete = reverse("admin:projects_scene_delete", args=[world["a_scene"].pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    world["a_scene"].refresh_from_db()
    assert world["a_scene"].prompt == "Alpha scene"


def test_a_viewer_cannot_change_a_character(client, sam, world):
    as_member(client, sam, world["a"], Role.VIEWER)
    url = reverse("admin:projects_character_change", args=[world["a_hero"].pk])
    data = {"project": world["a"].pk, "name": "Renamed", "aliases": "", "description": ""}
    assert client.post(url, data).status_code == 403
    world["a_hero"].refresh_from_db()
    assert world["a_hero"].name == "Alpha hero"


def test_a_viewer_cannot_add_a_scene_to_the_project(client, sam, world):
    Membership.objects.filter(project=world["c"], user=sam).delete()
    as_member(client, sam, world["a"], Role.VIEWER)
    assert (
        client.post(reverse("admin:projects_scene_add"), scene_post(project=world["a"].pk)).status_code == 403
    )
    assert world["a"].scenes.count() == 1


def test_a_viewer_cannot_bulk_delete_scenes(client, sam, world):
    as_member(client, sam, world["a"], Role.VIEWER)
    data = {"action": "delete_selected", "_selected_action": [world["a_scene"].pk], "post": "yes"}
    client.post(reverse("admin:projects_scene_changelist"), data)
    assert Scene.objects.filter(pk=world["a_scene"].pk).exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
def test_only_an_owner_changes_the_projects_settings_and_provider(client, sam, world, role):
    as_member(client, sam, world["a"], role)
    url = reverse("admin:projects_project_change", args=[world["a"].pk])
    data = {"title": "Taken over", "description": "", "provider": "openai", "provider_model": "x"}
    data.update({"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    assert client.post(url, data).status_code == 403
    world["a"].refresh_from_db()
    assert world["a"].provider == "" and world["a"].title == "The Tale"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
def test_a_non_owner_cannot_promote_themselves_to_owner(client, sam, world, role):
    as_member(client, sam, world["a"], role)
    url = reverse("admin:projects_project_change", args=[world["a"].pk])
    page = client.get(url)
    data = form_data(page)
    mine = Membership.objects.get(project=world["a"], user=sam)
    for key, value in list(data.items()):
        if key.endswith("-id") and str(value) == str(mine.pk):
            data[key.replace("-id", "-role")] = "owner"
    client.post(url, data)
    assert Membership.objects.get(pk=mine.pk).role == role


def test_an_owner_changes_the_provider_and_memberships(client, sam, world):
    as_member(client, sam, world["a"], Role.OWNER)
    url = reverse("admin:projects_project_change", args=[world["a"].pk])
    data = form_data(client.get(url))
    vera = Membership.objects.get(project=world["a"], user__username="vera")
    for key, value in list(data.items()):
        if key.endswith("-id") and str(value) == str(vera.pk):
            data[key.replace("-id", "-role")] = "editor"
    data["provider"] = "openai"
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    world["a"].refresh_from_db()
    assert world["a"].provider == "openai" and Membership.objects.get(pk=vera.pk).role == "editor"


def test_an_owner_cannot_add_a_stranger_as_a_member(client, sam, world, make_user):
    stranger = make_user("stranger")
    as_member(client, sam, world["a"], Role.OWNER)
    url = reverse("admin:projects_project_change", args=[world["a"].pk])
    data = form_data(client.get(url))
    prefix = "memberships"
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data.update({f"{prefix}-TOTAL_FORMS": index + 1, f"{prefix}-{index}-user": stranger.pk})
    data.update({f"{prefix}-{index}-role": "owner", f"{prefix}-{index}-project": world["a"].pk})
    client.post(url, data)
    assert not Membership.objects.filter(user=stranger).exists()


def test_staff_who_are_not_superusers_create_projects_in_the_studio_not_the_admin(client, sam, world):
    client.force_login(sam)
    data = {"title": "Orphan", "description": "", "provider": "", "provider_model": ""}
    data.update({"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    assert client.post(reverse("admin:projects_project_add"), data).status_code == 403
    assert not Project.objects.filter(title="Orphan").exists()


def test_the_retry_action_checks_the_role_in_each_scenes_project(client, sam, world):
    as_member(client, sam, world["a"], Role.EDITOR)
    Membership.objects.filter(project=world["c"], user=sam).update(role=Role.VIEWER)
    c_scene = services.scene_create(project=world["c"], prompt="Charlie scene")
    data = {"action": "retry_selected", "_selected_action": [world["a_scene"].pk, c_scene.pk]}
    response = client.post(reverse("admin:projects_scene_changelist"), data, follow=True)
    notes = [str(m) for m in response.context["messages"]]
    assert "Queued 1 scene for generation." in notes  # issue 14 (6): was "scene(s)"
    assert any("Charlie" in n and "not an editor or owner" in n for n in notes)
    assert list(BatchRun.objects.values_list("project_id", flat=True)) == [world["a"].pk]


# ---- superusers ----------------------------------------------------------------------------------------


def test_superusers_keep_full_access(admin_client, world):
    response = admin_client.get(reverse("admin:projects_scene_add"))
    assert {world["a"], world["b"], world["c"]} <= set(
        response.context["adminform"].form.fields["project"].queryset
    )
    response = admin_client.post(reverse("admin:projects_scene_add"), scene_post(project=world["b"].pk))
    assert response.status_code == 302
    assert world["b"].scenes.filter(prompt="planted").exists()
    url = reverse("admin:projects_project_change", args=[world["b"].pk])
    data = {**form_data(admin_client.get(url)), "provider": "gemini"}
    assert admin_client.post(url, data).status_code == 302
    world["b"].refresh_from_db()
    assert world["b"].provider == "gemini"


def test_a_duplicate_character_name_in_the_project_is_still_a_form_error(client, sam, world):
    # The project field is locked on change, but must still take part in the unique-name check.
    second = services.character_save(project=world["a"], name="Second")
    as_member(client, sam, world["a"], Role.EDITOR)
    url = reverse("admin:projects_character_change", args=[second.pk])
    data = {**form_data(client.get(url)), "name": "Alpha hero"}
    response = client.post(url, data)
    assert response.status_code == 200 and response.context["adminform"].form.errors


@pytest.mark.parametrize(
    ("name", "project_of"),
    [
        ("admin:projects_project_changelist", "pk"),
        ("admin:projects_scene_changelist", "project_id"),
        ("admin:projects_character_changelist", "project_id"),
        ("admin:generation_batchrun_changelist", "project_id"),
        ("admin:generation_generationattempt_changelist", "run__project_id"),
        ("admin:generation_sceneversion_changelist", "scene__project_id"),
    ],
)
def test_every_list_holds_only_the_users_projects(client, sam, world, name, project_of):
    from generation.models import GenerationAttempt, SceneVersion

    Membership.objects.filter(project=world["c"], user=sam).delete()
    for project, scene in ((world["a"], world["a_scene"]), (world["b"], world["b_scene"])):
        run = BatchRun.objects.create(project=project, provider="sketch", status="completed")
        GenerationAttempt.objects.create(
            run=run, scene=scene, number=1, provider="sketch", started=run.created
        )
        SceneVersion.objects.create(scene=scene, number=1, image=f"projects/{project.pk}/v.png")
    as_member(client, sam, world["a"], Role.VIEWER)
    shown = client.get(reverse(name)).context["cl"].queryset
    assert set(shown.values_list(project_of, flat=True)) == {world["a"].pk}


def test_the_admin_keeps_a_project_with_at_least_one_owner(client, sam, world):
    as_member(client, sam, world["a"], Role.OWNER)
    Membership.objects.filter(project=world["a"], user__username="olivia").update(role=Role.EDITOR)
    url = reverse("admin:projects_project_change", args=[world["a"].pk])
    data = form_data(client.get(url))
    mine = Membership.objects.get(project=world["a"], user=sam)
    for key, value in list(data.items()):
        if key.endswith("-id") and str(value) == str(mine.pk):
            data[key.replace("-id", "-role")] = "viewer"
    response = client.post(url, data)
    assert response.status_code == 200 and "at least one owner" in response.content.decode()
    assert Membership.objects.get(pk=mine.pk).role == Role.OWNER
