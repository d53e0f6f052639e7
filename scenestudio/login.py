"""Login with a failure limit: LOGIN_FAILURE_LIMIT failed logins for one username from one address lock
that pair out for LOGIN_FAILURE_WINDOW_SECONDS, even with the right password (the studio's login answers
429). The studio's login and the admin's share the counts.

Counts live in Django's cache (Redis when REDIS_URL is set, so all Daphnes share them).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpResponse

THROTTLED = "Too many failed logins for this username from your address. Try again in {minutes} minutes."


def _key(request, username: str) -> str:
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    who = f"{username.strip().casefold()}\n{address}"
    return "login-failures:" + hashlib.sha256(who.encode()).hexdigest()


def _record_failure(key: str) -> None:
    # The window runs from the first failure: add() starts it, incr() keeps its expiry.
    if not cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS):
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)


class ThrottledLoginMixin:
    """For an AuthenticationForm: refuse a locked username+address before the password is checked,
    count each failed login, and clear the count on success."""

    throttled = False

    def clean(self) -> dict:
        key = _key(self.request, self.cleaned_data.get("username") or "")
        if cache.get(key, 0) >= settings.LOGIN_FAILURE_LIMIT:
            self.throttled = True
            minutes = max(1, round(settings.LOGIN_FAILURE_WINDOW_SECONDS / 60))
            raise ValidationError(THROTTLED.format(minutes=minutes), code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            _record_failure(key)
            raise
        cache.delete(key)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


class ThrottledLoginView(LoginView):
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form: ThrottledAuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.throttled:
            response.status_code = 429
        return response
