"""Sealing provider keys at rest: Fernet (AES-128-CBC with HMAC-SHA256) from the `cryptography` library.

The sealing keys come from settings.PROVIDER_KEYS_SECRETS: the first seals, every one of them unseals, so
a secret can be rotated by putting the new one first. Without that setting they are derived from
SECRET_KEY, so a database dump alone never holds a usable provider key.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class KeyUnreadable(Exception):
    """A sealed key none of the configured secrets opens (they changed since it was stored)."""


def _fernet(secret: str) -> Fernet:
    # A 32-byte key from any secret string; the label keeps it apart from other uses of the same secret.
    digest = hashlib.sha256(b"scenestudio.provider-keys:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> MultiFernet:
    secrets = list(settings.PROVIDER_KEYS_SECRETS) or [settings.SECRET_KEY]
    return MultiFernet([_fernet(secret) for secret in secrets])


def seal(value: str) -> str:
    return _keys().encrypt(value.encode()).decode()


def unseal(token: str) -> str:
    try:
        return _keys().decrypt(token.encode()).decode()
    except InvalidToken:
        raise KeyUnreadable(
            "the stored key cannot be read with the studio's secrets (SECRET_KEY or PROVIDER_KEYS_SECRETS "
            "changed since it was saved): an owner must set it again"
        ) from None
