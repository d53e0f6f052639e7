"""Which webhook URLs the studio may call: http(s) only, and no loopback or private address (the studio
must not become a way into its own network) unless WEBHOOKS_ALLOW_PRIVATE says so."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError


def _addresses(host: str, port: int) -> list[str]:
    try:
        return [info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationError(f"The host {host!r} does not resolve.", code="unresolvable") from exc


def webhook_url_check(url: str) -> None:
    """Raise ValidationError (with the reason) for a URL deliveries may not go to; checked when an
    endpoint is saved and again before every delivery, since DNS can change in between."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise ValidationError("Only http and https URLs are allowed.", code="scheme")
    if not parts.hostname:
        raise ValidationError("The URL has no host.", code="host")
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for address in _addresses(parts.hostname, port):
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            raise ValidationError(
                f"{parts.hostname} is a loopback or private address ({ip}); webhooks go to public hosts.",
                code="private",
            )
