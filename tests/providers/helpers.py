from __future__ import annotations

import socket

from generation.fakeprovider.images import make_png
from generation.providers.base import Reference


def reference(n: int, name: str = "") -> Reference:
    return Reference(name=name or f"character {n}", image=make_png(100_000 + n, width=24, height=24))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
