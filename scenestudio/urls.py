from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from scenestudio.login import ThrottledLoginView

urlpatterns = [
    path("admin/", admin.site.urls),
    # Before Django's auth URLs, so this login (with its failure limit) wins over theirs.
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("projects.urls")),
    path("", include("generation.urls")),
]
