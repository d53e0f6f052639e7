from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("projects.urls")),
    path("", include("generation.urls")),
    path("", include("api.urls")),
    path("", include("webhooks.urls")),
    path("", include("ops.urls")),
]
