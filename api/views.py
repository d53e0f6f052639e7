"""The personal access tokens page: create (the token is shown once), list and revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from api import services
from api.forms import TokenForm
from api.models import AccessToken


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None, user=request.user)
    created = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        token, raw = services.token_create(
            user=request.user, name=data["name"], read_only=data["read_only"], projects=data["projects"]
        )
        # Rendered, not redirected: the raw token exists only in this response.
        created = {"token": token, "raw": raw}
        form = TokenForm(user=request.user)
    tokens = AccessToken.objects.filter(user=request.user).prefetch_related("projects")
    context = {"form": form, "tokens": tokens, "created": created}
    response = render(request, "api/token_list.html", context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(AccessToken, pk=token_id, user=request.user)
    services.token_revoke(token=token)
    messages.success(request, f"Revoked “{token.name}”.")
    return redirect("token_list")
