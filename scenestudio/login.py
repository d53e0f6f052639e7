"""The login view with a failure limit: LOGIN_FAILURE_LIMIT failed logins for one username from one
address lock that pair out for LOGIN_FAILURE_WINDOW_SECONDS (429), even with the right password.

Counts live in Django's cache (Redis when REDIS_URL is set, so all Daphnes share them).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpResponse

THROTTLED = "Too many failed logins for this username from your address. Try again in {minutes} minutes."


def _key(request, username: str) -> str:
    who = f"{username.strip().casefold()}\n{request.META.get('REMOTE_ADDR', '')}"
    return "login-failures:" + hashlib.sha256(who.encode()).hexdigest()


def _failures(key: str) -> int:
    return cache.get(key, 0)


def _record_failure(key: str) -> None:
    # The window runs from the first failure: add() starts it, incr() keeps its expiry.
    if not cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS):
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self) -> dict:
        username = self.cleaned_data.get("username") or ""
        self.throttle_key = _key(self.request, username)
        self.throttled = _failures(self.throttle_key) >= settings.LOGIN_FAILURE_LIMIT
        if self.throttled:
            # Before authenticate(): a locked pair gets no answer about the password at all.
            minutes = max(1, round(settings.LOGIN_FAILURE_WINDOW_SECONDS / 60))
            raise ValidationError(THROTTLED.format(minutes=minutes), code="throttled")
        return super().clean()


class ThrottledLoginView(LoginView):
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form: ThrottledAuthenticationForm) -> HttpResponse:
        throttled = getattr(form, "throttled", False)
        if not throttled and hasattr(form, "throttle_key"):
            _record_failure(form.throttle_key)
        response = super().form_invalid(form)
        if throttled:
            response.status_code = 429
        return response

    def form_valid(self, form: ThrottledAuthenticationForm) -> HttpResponse:
        cache.delete(form.throttle_key)
        return super().form_valid(form)
