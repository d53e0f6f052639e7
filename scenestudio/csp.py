"""The site-wide Content-Security-Policy (django-csp), plus the page's own WebSocket origin.

CSP Level 3 lets 'self' match ws:/wss: on the same host, but older engines need the socket's origin
named: it is this request's host (already validated against ALLOWED_HOSTS) with the socket scheme that
matches the page's.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


class StudioCSPMiddleware(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:  # answered 400 already; the policy needs no socket then
            return parts
        socket = f"{'wss' if request.is_secure() else 'ws'}://{host}"
        parts.update = {**(parts.update or {}), "connect-src": [socket]}
        return parts
