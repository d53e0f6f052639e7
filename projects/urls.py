from __future__ import annotations

from django.urls import path

from projects import character_views, export_views, member_views, studio_views, views

urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("projects/new/", views.project_create, name="project_create"),
    path("projects/<int:project_id>/", views.project_detail, name="project_detail"),
    path("projects/<int:project_id>/edit/", views.project_edit, name="project_edit"),
    path("projects/<int:project_id>/delete/", views.project_delete, name="project_delete"),
    path("projects/<int:project_id>/import/", views.story_import, name="story_import"),
    path("projects/<int:project_id>/import/zip/", studio_views.studio_zip_import, name="studio_zip_import"),
    path("projects/<int:project_id>/export.zip", export_views.project_export_zip, name="project_export_zip"),
    path("projects/<int:project_id>/storyboard.pdf", studio_views.project_pdf, name="project_pdf"),
    path(
        "projects/<int:project_id>/contact-sheet/",
        export_views.project_contact_sheet_page,
        name="project_contact_sheet_page",
    ),
    path(
        "projects/<int:project_id>/contact-sheet.png",
        export_views.project_contact_sheet,
        name="project_contact_sheet",
    ),
    path("projects/<int:project_id>/tiles/", views.scene_tiles, name="scene_tiles"),
    path("projects/<int:project_id>/scenes/new/", views.scene_create, name="scene_create"),
    path("projects/<int:project_id>/scenes/selected/", studio_views.scenes_bulk, name="scenes_bulk"),
    path("projects/<int:project_id>/scenes/reorder/", views.scenes_reorder, name="scenes_reorder"),
    path("projects/<int:project_id>/scenes/<int:scene_id>/", views.scene_edit, name="scene_edit"),
    path("projects/<int:project_id>/scenes/<int:scene_id>/delete/", views.scene_delete, name="scene_delete"),
    path("projects/<int:project_id>/scenes/<int:scene_id>/move/", views.scene_move, name="scene_move"),
    path("projects/<int:project_id>/scenes/<int:scene_id>/image/", views.scene_image, name="scene_image"),
    path(
        "projects/<int:project_id>/scenes/<int:scene_id>/notes/", studio_views.scene_notes, name="scene_notes"
    ),
    path("projects/<int:project_id>/scenes/<int:scene_id>/seed/", studio_views.scene_seed, name="scene_seed"),
    path("projects/<int:project_id>/characters/", character_views.character_list, name="character_list"),
    path(
        "projects/<int:project_id>/characters/new/", character_views.character_edit, name="character_create"
    ),
    path(
        "projects/<int:project_id>/characters/link/", character_views.characters_link, name="characters_link"
    ),
    path(
        "projects/<int:project_id>/characters/<int:character_id>/",
        character_views.character_edit,
        name="character_edit",
    ),
    path(
        "projects/<int:project_id>/characters/<int:character_id>/delete/",
        character_views.character_delete,
        name="character_delete",
    ),
    path(
        "projects/<int:project_id>/characters/<int:character_id>/reference/",
        character_views.character_reference,
        name="character_reference",
    ),
    path(
        "projects/<int:project_id>/characters/<int:character_id>/references/",
        studio_views.character_reference_add,
        name="character_reference_add",
    ),
    path(
        "projects/<int:project_id>/characters/<int:character_id>/references/<int:reference_id>/",
        studio_views.character_extra_reference,
        name="character_extra_reference",
    ),
    path(
        "projects/<int:project_id>/characters/<int:character_id>/references/<int:reference_id>/delete/",
        studio_views.character_reference_delete,
        name="character_reference_delete",
    ),
    path(
        "projects/<int:project_id>/characters/library/",
        studio_views.character_library,
        name="character_library",
    ),
    path("projects/<int:project_id>/invitations/", studio_views.invitation_list, name="invitation_list"),
    path(
        "projects/<int:project_id>/invitations/<int:invitation_id>/revoke/",
        studio_views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("invite/<str:token>/", studio_views.invitation_open, name="invitation_open"),
    path("projects/<int:project_id>/members/", member_views.member_list, name="member_list"),
    path(
        "projects/<int:project_id>/members/<int:member_id>/", member_views.member_update, name="member_update"
    ),
]
