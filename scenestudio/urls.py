from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from scenestudio.login import ThrottledAdminAuthenticationForm, ThrottledLoginView

# The admin's login counts failures with the studio's (its views are Django's; only the form is ours).
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("admin/", admin.site.urls),
    # Before Django's auth URLs, so this login (with its failure limit) wins over theirs.
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("projects.urls")),
    path("", include("generation.urls")),
    path("", include("api.urls")),
    path("", include("webhooks.urls")),
    path("", include("ops.urls")),
]
