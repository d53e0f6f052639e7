"""Bearer tokens for scripts, the session for the browser; both count against a per-caller rate limit."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from api.errors import RateLimited
from api.services import rate_limit_wait, token_authenticate


def _limit(key: str) -> None:
    wait = rate_limit_wait(key=key)
    if wait is not None:
        raise RateLimited(wait)


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        access = token_authenticate(raw=token)
        if access is None:
            return None
        _limit(f"token:{access.pk}")
        # The services and the access helper read request.user, as they do for the pages.
        request.api_token = access
        request.user = access.user
        return access.user


class Session(SessionAuth):
    """Django's session, CSRF-checked (ninja's SessionAuth does that for unsafe methods)."""

    def authenticate(self, request: HttpRequest, key: str | None):
        user = super().authenticate(request, key)
        if user is not None:
            _limit(f"user:{user.pk}")
        return user
