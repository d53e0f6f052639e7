"""Learned credential profiles in the database: the engine's ProfileStore, keyed by provider and a hash
of the credential's id (never the secret), so the next run on a key starts where the last one ended."""

from __future__ import annotations

import hashlib

from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import F

from generation.costs.models import LearnedProfile
from generation.engine.profile import CredentialProfile
from generation.providers.base import Provider


def credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


class DatabaseProfileStore:
    """ProfileStore (generation.engine.profile) on the LearnedProfile table, for one provider."""

    def __init__(self, provider: str) -> None:
        self.provider = provider

    def load_sync(self, credential: str) -> CredentialProfile | None:
        row = LearnedProfile.objects.filter(
            provider=self.provider, credential_hash=credential_hash(credential)
        ).first()
        return None if row is None else CredentialProfile.from_dict(row.values)

    def save_sync(
        self, credential: str, profile: CredentialProfile, *, jobs: int = 0, requests: int = 0
    ) -> None:
        with transaction.atomic():
            row, _ = LearnedProfile.objects.select_for_update().get_or_create(
                provider=self.provider, credential_hash=credential_hash(credential)
            )
            LearnedProfile.objects.filter(pk=row.pk).update(
                values=profile.as_dict(), jobs=F("jobs") + jobs, requests=F("requests") + requests
            )

    async def load(self, credential: str) -> CredentialProfile | None:
        return await sync_to_async(self.load_sync)(credential)

    async def save(self, credential: str, profile: CredentialProfile) -> None:
        await sync_to_async(self.save_sync)(credential, profile)


def profile_for(provider: Provider) -> CredentialProfile | None:
    return DatabaseProfileStore(provider.name).load_sync(provider.credential)


def retry_rate_for(provider: Provider) -> float:
    row = LearnedProfile.objects.filter(
        provider=provider.name, credential_hash=credential_hash(provider.credential)
    ).first()
    return 0.0 if row is None else row.retry_rate()


def profile_record(
    *, provider: Provider, profile: CredentialProfile | None, jobs: int, requests: int
) -> None:
    """Save what a run learned (its RunResult.profile) and how many requests its items took."""
    if profile is not None:
        DatabaseProfileStore(provider.name).save_sync(
            provider.credential, profile, jobs=jobs, requests=requests
        )
