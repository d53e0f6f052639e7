from __future__ import annotations

from django.urls import path

from webhooks import views

urlpatterns = [
    path("projects/<int:project_id>/webhooks/", views.endpoint_list, name="webhook_list"),
    path(
        "projects/<int:project_id>/webhooks/<int:endpoint_id>/",
        views.endpoint_detail,
        name="webhook_endpoint",
    ),
    path(
        "projects/<int:project_id>/webhooks/<int:endpoint_id>/delete/",
        views.endpoint_delete,
        name="webhook_endpoint_delete",
    ),
    path(
        "projects/<int:project_id>/webhooks/deliveries/<int:delivery_id>/redeliver/",
        views.delivery_redeliver,
        name="webhook_redeliver",
    ),
]
