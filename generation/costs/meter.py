"""A run's spending as it happens: the cost of each attempt, the run's total, and the budget guard that
refuses a dispatch which could take the run past what it may spend.

The guard wraps the run's limiter: the scheduler takes a send slot from it right before each request,
so checking there (spent + one price per request not billed yet + this one <= budget left) means requests
in flight can overshoot the budget only by what their actual cost exceeds the table's price.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from generation.costs.budgets import budget_left
from generation.costs.models import Price
from generation.costs.prices import AttemptCost, PriceKey, attempt_cost, money, price_for, price_key
from generation.providers.base import ImageRequest, ImageResult, Provider

BUDGET_REACHED = "Budget reached"
RESERVATION_POLL_SECONDS = 0.05


class CostMeter:
    """What one run spent and may still spend. `prepare()` reads the database (call it from sync code)."""

    def __init__(self, *, provider: Provider, batch: bool = False) -> None:
        self.provider = provider
        self.batch = batch
        self.spent = Decimal(0)
        self.unpriced = 0
        self.left: Decimal | None = None
        self.unit_price: Decimal | None = None
        # Slots taken whose attempt is not billed yet: sent, or about to be. Counted from the slot, not
        # from the scheduler's in-flight count, which drops before the answer's cost is recorded.
        self.reserved = 0
        self._lock = threading.Lock()
        self._prices: dict[PriceKey, Price | None] = {}

    def prepare(
        self, *, run_id: int, project_id: int, user_id: int | None, spent: Decimal, unpriced: int
    ) -> None:
        self.spent, self.unpriced = Decimal(spent), unpriced
        self.left = budget_left(project_id=project_id, user_id=user_id, exclude_run=run_id)
        # Read here, in the database's thread: the guard asks from the event loop.
        self.unit_price = self.unit()

    def price(self, request: ImageRequest | None = None, *, model: str = "") -> Price | None:
        key = price_key(self.provider, request, model=model)
        if key not in self._prices:
            self._prices[key] = price_for(key)
        return self._prices[key]

    def unit(self, request: ImageRequest | None = None) -> Decimal | None:
        price = self.price(request)
        return None if price is None else price.image_cost(batch=self.batch)

    def attempt(
        self, request: ImageRequest, result: ImageResult | None, error: BaseException | None
    ) -> AttemptCost:
        # Priced on the model that answered (Gemini sends references and batches to its image model).
        price = self.price(request, model=result.model if result is not None else "")
        cost = attempt_cost(price=price, result=result, error=error, batch=self.batch)
        with self._lock:
            self.reserved = max(0, self.reserved - 1)
            if cost.cost is not None:
                self.spent += cost.cost
            self.unpriced += int(cost.unpriced)
        return cost

    def reserve(self) -> bool:
        """Take a slot for one more request if it fits the budget with every unbilled one priced in."""
        with self._lock:
            unit = self.unit_price
            if self.left is not None and unit is not None:
                if self.spent + unit * (self.reserved + 1) > self.left:
                    return False
            self.reserved += 1
            return True

    def reached_message(self) -> str:
        return (
            f"{BUDGET_REACHED}: spent {money(self.spent)} of {money(self.left)}; raise the budget to resume"
        )


class BudgetGuard:
    """A Limiter (generation.engine.limiter) that stops the run instead of letting a request past the
    budget; everything else is the wrapped limiter's."""

    def __init__(self, limiter: Any, *, meter: CostMeter, stop: Callable[[str], None]) -> None:
        self._limiter = limiter
        self._meter = meter
        self._stop = stop

    async def acquire(self) -> None:
        await self._limiter.acquire()
        while not self._meter.reserve():
            if not self._meter.reserved:
                self._stop(self._meter.reached_message())
                # The stop cancels the dispatcher waiting here: nothing more is sent.
                await asyncio.get_running_loop().create_future()
            # Requests still unbilled may cost less than their price, or fail unbilled: wait for them
            # rather than stop the run under them (a stop would cancel those not sent yet).
            await asyncio.sleep(RESERVATION_POLL_SECONDS)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._limiter, name)
