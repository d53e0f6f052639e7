from __future__ import annotations

from django.contrib import admin
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest
from django.urls import include, path
from django.views.decorators.http import require_safe

from scenestudio.login import ThrottledAdminAuthenticationForm, ThrottledLoginView

# The admin's login counts failures with the studio's (its views are Django's; only the form is ours).
admin.site.login_form = ThrottledAdminAuthenticationForm


@require_safe
def favicon(request: HttpRequest) -> FileResponse:
    """Browsers ask for /favicon.ico whatever the page links: served here in every mode, not only
    where a front server maps /static/."""
    path = finders.find("favicon.ico")
    if path is None:
        raise Http404("No icon")
    response = FileResponse(open(path, "rb"), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
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
