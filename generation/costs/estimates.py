"""The estimate before a run: what it will generate, send, cost and take, from the price table, the
credential's learned profile and observed retry rate, and the engine's planner on a simulated clock."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from generation.costs.budgets import budget_left
from generation.costs.prices import money, price_key, unit_cost
from generation.costs.profiles import profile_for, retry_rate_for
from generation.engine.config import EngineConfig
from generation.engine.planner import plan
from generation.engine.profile import CredentialProfile
from generation.providers.base import Provider


@dataclass(frozen=True)
class Estimate:
    scenes: int
    requests: int
    unit_cost: Decimal | None  # None = unpriced
    cost: Decimal | None
    batch_cost: Decimal | None
    duration_s: float | None  # None when the planner was not asked
    retry_rate: float
    daily_cap: int | None = None
    today: Sequence[int] = field(default_factory=tuple)  # positions generated before the daily reset
    after_reset: Sequence[int] = field(default_factory=tuple)
    budget_left: Decimal | None = None

    @property
    def over_budget(self) -> bool:
        return self.budget_left is not None and self.cost is not None and self.cost > self.budget_left

    def cost_text(self) -> str:
        return money(self.cost)

    def batch_saving_text(self) -> str:
        if self.cost is None or self.batch_cost is None:
            return "unpriced"
        return money(self.cost - self.batch_cost)

    def lines(self) -> list[str]:
        """The estimate as a person reads it (the CLI's --dry-run and `plan` print these)."""
        out = [
            f"Scenes to generate: {self.scenes}",
            f"Expected requests: {self.requests} (retry rate {self.retry_rate:.0%} on this credential)",
            f"Expected cost: {self.cost_text()}",
        ]
        if self.duration_s is not None:
            out.append(f"Expected duration: {duration_text(self.duration_s)}")
        if self.batch_cost is not None and self.cost is not None:
            out.append(
                f"Half price, within 24 h: {money(self.batch_cost)} (saves {self.batch_saving_text()})"
            )
        if self.after_reset:
            out.append(
                f"Daily quota ({self.daily_cap} a day): {len(self.today)} scene(s) today, "
                f"{len(self.after_reset)} after the reset (scenes {span(self.after_reset)})"
            )
        if self.budget_left is not None:
            out.append(
                f"Budget left: {money(self.budget_left)}" + (" — over budget" if self.over_budget else "")
            )
        return out


def duration_text(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def span(positions: Sequence[int]) -> str:
    return f"{positions[0]}-{positions[-1]}" if len(positions) > 1 else str(positions[0])


def estimate(
    *,
    provider: Provider,
    positions: Sequence[int],
    config: EngineConfig,
    project_id: int | None = None,
    user_id: int | None = None,
    rpm: float | None = None,
    latency: float | None = None,
    simulate: bool = True,
) -> Estimate:
    """Estimate a run of the scenes at `positions` on `provider`'s credential. `rpm` and `latency`
    override what the credential's profile says (the `plan` command's --rpm and --latency)."""
    profile = profile_for(provider)
    retry_rate = retry_rate_for(provider)
    count = len(positions)
    unit = unit_cost(price_key(provider))
    batch_unit = unit_cost(price_key(provider), batch=True) if provider_batches(provider) else None
    daily_cap = profile.daily_cap if profile else None
    today = list(positions[:daily_cap]) if daily_cap is not None else list(positions)
    duration, planned_requests = None, count
    if simulate and count:
        result = _plan(len(today), profile, config, rpm=rpm, latency=latency)
        duration, planned_requests = result
    requests = max(planned_requests, math.ceil(count * (1 + retry_rate)))
    left = budget_left(project_id=project_id, user_id=user_id) if project_id is not None else None
    return Estimate(
        scenes=count,
        requests=requests,
        unit_cost=unit,
        cost=None if unit is None else unit * count,
        batch_cost=None if batch_unit is None else batch_unit * count,
        duration_s=duration,
        retry_rate=retry_rate,
        daily_cap=daily_cap,
        today=today,
        after_reset=list(positions[len(today) :]),
        budget_left=left,
    )


def _plan(
    count: int,
    profile: CredentialProfile | None,
    config: EngineConfig,
    *,
    rpm: float | None,
    latency: float | None,
) -> tuple[float, int]:
    overrides: dict = {}
    if rpm:
        overrides["requests_per_minute"] = int(rpm)
    if latency:
        overrides["latency"] = latency
    if not count:
        return 0.0, 0
    # A daily cap is planned as the split above, not as an error stopping the simulated run.
    if profile is not None and profile.daily_cap is not None:
        profile = CredentialProfile.from_dict({**profile.as_dict(), "daily_cap": None})
    result = plan(scenes=count, profile=profile, provider=overrides, config=config)
    return result.duration_s, result.requests


def provider_batches(provider: Provider) -> bool:
    from generation.batches.clients import supports_batch

    return supports_batch(provider)


def run_estimate(
    *,
    project,
    user=None,
    scene_ids: Sequence[int] | None = None,
    regenerate: bool = False,
    provider: str = "",
    overrides: dict | None = None,
    rpm: float | None = None,
    latency: float | None = None,
    simulate: bool = True,
) -> Estimate:
    """The estimate of the scenes run `run_start` would make with the same arguments."""
    from django.conf import settings

    from generation.runs.services import engine_config

    scenes = project.scenes.order_by("position")
    if scene_ids is not None:
        scenes = scenes.filter(pk__in=scene_ids)
    positions = [s.position for s in scenes if not s.skip_code(regenerate=regenerate)]
    name = provider or project.provider or settings.GENERATION_PROVIDER
    return estimate(
        provider=_estimate_provider(project, name),
        positions=positions,
        config=engine_config(overrides),
        project_id=project.pk,
        user_id=getattr(user, "pk", None),
        rpm=rpm,
        latency=latency,
        simulate=simulate,
    )


def _estimate_provider(project, name: str):
    """The provider a run would use, for its credential's learned profile: the project's key's when it
    has one. One that cannot be unsealed falls back to the studio's (run_start refuses it and says why)."""
    from generation.credentials.vault import KeyUnreadable
    from generation.runs.providers import project_provider, provider_for

    try:
        return project_provider(project_id=project.pk, name=name, model=project.provider_model)
    except KeyUnreadable:
        return provider_for(name, project.provider_model)


def budget_refusal(
    *, project, user, scenes: Sequence, regenerate: bool, provider: str, mode: str = "sync"
) -> str:
    """Why a run of `scenes` may not start for budget reasons ("" when it may): its expected cost is
    more than the project's or the person's monthly budget has left."""
    from django.conf import settings

    from generation.costs.models import Budget
    from generation.runs.providers import provider_for

    user_id = getattr(user, "pk", None)
    if not Budget.objects.filter(models_q(project_id=project.pk, user_id=user_id)).exists():
        return ""
    count = sum(1 for s in scenes if not s.skip_code(regenerate=regenerate))
    name = provider or project.provider or settings.GENERATION_PROVIDER
    unit = unit_cost(price_key(provider_for(name, project.provider_model)), batch=mode == "batch")
    left = budget_left(project_id=project.pk, user_id=user_id)
    if unit is None or left is None or unit * count <= left:
        return ""
    return (
        f"Over budget: {count} scene(s) are expected to cost {money(unit * count)}, "
        f"and the budget has {money(max(left, Decimal(0)))} left. Raise the budget to generate them."
    )


def models_q(*, project_id: int, user_id: int | None):
    from django.db.models import Q

    return Q(project_id=project_id) | Q(user_id=user_id) if user_id is not None else Q(project_id=project_id)


def batch_supported(*, project, provider: str = "") -> bool:
    from django.conf import settings

    from generation.runs.providers import provider_for

    name = provider or project.provider or settings.GENERATION_PROVIDER
    return provider_batches(provider_for(name, project.provider_model))
