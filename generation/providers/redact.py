"""Scrub credentials out of text a member may read (a provider's error message, an attempt's reason).

Two layers: every value a provider was configured with (`remember_secrets`) is replaced wherever it
appears, also base64-, base64url- and percent-encoded; and credential *shapes* are replaced even when
the value is unknown: `Bearer …`, `Basic …`, `user:pass@` in URLs, `key=`/`token=`-style query
parameters and the well-known OpenAI and Google key formats. No Django: providers and the engine use it.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
# Shorter values ("", "a", "no") would mask ordinary words; no real credential is that short.
_MIN_SECRET = 4

_SHAPES = [
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{4,}"), rf"\1\2{MASK}"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/:@]+:[^\s/@]*@"), rf"\1{MASK}@"),
    (
        re.compile(
            r"(?i)([?&;]|\b)((?:api[_-]?)?key|access[_-]?token|token|password|passwd|secret|sig|signature)"
            r"(=)[^&\s#\"']+"
        ),
        rf"\1\2\3{MASK}",
    ),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), MASK),  # OpenAI
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), MASK),  # Google
]

_known: set[str] = set()
_lock = threading.Lock()


def remember_secrets(*values: str) -> None:
    """Add configured credentials (API keys, passwords, "user:password") to those always scrubbed."""
    with _lock:
        _known.update(value for value in values if value and len(value) >= _MIN_SECRET)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known or given secret, in every encoding, and every credential shape masked."""
    values = {value for value in secrets if value and len(value) >= _MIN_SECRET} | _known
    for form in sorted({form for value in values for form in _encodings(value)}, key=len, reverse=True):
        text = text.replace(form, MASK)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


def _encodings(value: str) -> set[str]:
    raw = value.encode()
    forms = {value, quote(value, safe=""), quote(value)}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms.update({text, text.rstrip("=")})
    return {form for form in forms if len(form) >= _MIN_SECRET}
