from __future__ import annotations

from django.urls import path

from generation import views

urlpatterns = [
    path("projects/<int:project_id>/estimate/", views.run_estimate, name="run_estimate"),
    path("projects/<int:project_id>/provider-keys/", views.provider_keys, name="provider_keys"),
    path("projects/<int:project_id>/status.json", views.project_status, name="project_status"),
    path(
        "projects/<int:project_id>/runs/<str:action>/",
        views.run_action,
        name="run_action",
    ),
    path(
        "projects/<int:project_id>/scenes/<int:scene_id>/versions.json",
        views.scene_versions,
        name="scene_versions",
    ),
    path(
        "projects/<int:project_id>/scenes/<int:scene_id>/versions/<int:version_id>/image/",
        views.version_image,
        name="version_image",
    ),
    path(
        "projects/<int:project_id>/scenes/<int:scene_id>/versions/<int:version_id>/current/",
        views.version_make_current,
        name="version_make_current",
    ),
]
