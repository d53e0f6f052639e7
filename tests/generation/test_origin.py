"""The socket accepts a page of its own origin (scheme, host and port) or a trusted one, and nothing else."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from scenestudio.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hosts(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "studio.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://studio.example.com", "https://*.trusted.example"]


async def handshake(team, *, host: str, origin: str | None, scheme: str = "ws", extra=()) -> bool:
    client = Client()
    await database_sync_to_async(client.force_login)(team.viewer)
    headers = [
        (b"host", host.encode()),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    headers.extend(extra)
    communicator = WebsocketCommunicator(application, f"/ws/projects/{team.project.pk}/", headers=headers)
    communicator.scope["scheme"] = scheme
    try:
        connected, _ = await communicator.connect()
        return connected
    finally:
        await communicator.disconnect()


@pytest.mark.parametrize(
    ("scheme", "host", "origin"),
    [
        ("ws", "127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("wss", "127.0.0.1:8000", "https://127.0.0.1:8000"),
        ("ws", "localhost", "http://localhost:80"),  # the default port, spelled out
        ("ws", "localhost:80", "http://localhost"),
        # Behind a TLS-terminating proxy the server sees ws://; the public origin is trusted by name.
        ("ws", "studio.example.com", "https://studio.example.com"),
        ("ws", "studio.example.com", "https://app.trusted.example"),
    ],
)
async def test_the_same_origin_or_a_trusted_one_may_connect(hosts, team, scheme, host, origin):
    assert await handshake(team, host=host, origin=origin, scheme=scheme)


@pytest.mark.parametrize(
    ("scheme", "host", "origin"),
    [
        ("ws", "127.0.0.1:8000", "http://localhost:9999"),
        ("ws", "127.0.0.1:8000", "https://127.0.0.1"),
        ("ws", "127.0.0.1:8000", "http://127.0.0.1"),
        ("ws", "127.0.0.1:8000", "https://127.0.0.1:8000"),
        ("ws", "127.0.0.1:8000", "http://127.0.0.1:8001"),
        ("wss", "127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("ws", "127.0.0.1:8000", "http://evil.example:8000"),
        ("ws", "127.0.0.1:8000", "null"),
        ("ws", "127.0.0.1:8000", "http://127.0.0.1:8000.evil.example"),
        ("ws", "127.0.0.1:8000", None),
        ("ws", "studio.example.com", "https://trusted.example.evil"),
        ("ws", "studio.example.com", "http://app.trusted.example"),
        # A Host the server does not serve is refused even when the page claims the same origin.
        ("ws", "rebound.example:8000", "http://rebound.example:8000"),
    ],
)
async def test_any_other_origin_is_refused(hosts, team, scheme, host, origin):
    assert not await handshake(team, host=host, origin=origin, scheme=scheme)


@pytest.mark.parametrize(("trusted", "allowed"), [(True, True), (False, False)])
async def test_a_tls_proxys_header_counts_only_when_django_is_told_to_trust_it(
    hosts, settings, team, trusted, allowed
):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if trusted else None
    forwarded = [(b"x-forwarded-proto", b"https")]
    assert await handshake(team, host="localhost", origin="https://localhost", extra=forwarded) is allowed
