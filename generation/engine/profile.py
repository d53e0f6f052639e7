"""What a run learns about its credential, carried to the next run on the same key.

A fresh run knows nothing: it slow-starts and discovers the quota from headers or 429s, which costs
seconds to minutes. `CredentialProfile` is what it found (rate, window, concurrency, latency, a daily
cap); a scheduler given one starts where the last run ended. `ProfileStore` is the small interface a
persistence layer implements (the database, or Redis when scaled): load before a run, save after.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class CredentialProfile:
    # Requests per `window` seconds the quota allows; None = no limit seen.
    rate: float | None = None
    window: float = 60.0
    # The in-flight level the run ended at, and the provider's concurrency cap if a 429 revealed one.
    concurrency: int | None = None
    concurrency_cap: int | None = None
    # Latency of accepted requests, seconds.
    latency_mean: float | None = None
    latency_p90: float | None = None
    latency_samples: int = 0
    # Accepted requests before a daily quota refused one, if that happened.
    daily_cap: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CredentialProfile:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def latency_sigma(self) -> float | None:
        """The lognormal sigma matching mean and p90 (p90 = median x e^(1.2816 sigma)), for the planner."""
        if not self.latency_mean or not self.latency_p90 or self.latency_p90 <= 0:
            return None
        # mean = median x e^(sigma^2 / 2): solve ln(p90 / mean) = 1.2816 s - s^2 / 2 for the small root.
        ratio = math.log(self.latency_p90 / self.latency_mean)
        disc = 1.2816**2 - 2 * ratio
        if ratio <= 0 or disc < 0:
            return None
        return 1.2816 - math.sqrt(disc)


class ProfileStore(Protocol):
    """Where profiles live between runs, keyed by the provider credential (`Provider.credential`)."""

    async def load(self, credential: str) -> CredentialProfile | None:
        """The last saved profile, or None for a credential never seen."""

    async def save(self, credential: str, profile: CredentialProfile) -> None:
        """Replace the stored profile (the scheduler's profile already merges what it was given)."""


class MemoryProfileStore:
    """A ProfileStore in this process, for tests, benchmarks and the planner."""

    def __init__(self) -> None:
        self.profiles: dict[str, CredentialProfile] = {}

    async def load(self, credential: str) -> CredentialProfile | None:
        return self.profiles.get(credential)

    async def save(self, credential: str, profile: CredentialProfile) -> None:
        self.profiles[credential] = profile
