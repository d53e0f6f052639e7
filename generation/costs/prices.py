"""Which price applies to a request, and what one attempt cost.

The price table lives in the database (Price, editable in the admin, seeded with published prices):
the newest price in effect today wins, and among those the most specific (model, size, quality).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils import timezone

from generation.costs.models import Price
from generation.providers.base import ImageRequest, ImageResult, Provider


@dataclass(frozen=True)
class PriceKey:
    provider: str
    model: str
    size: str = ""
    quality: str = ""


def price_key(provider: Provider, request: ImageRequest | None = None, *, model: str = "") -> PriceKey:
    """What the price depends on for this provider instance (the fake server is priced as the API it
    imitates: its instances are OpenAI or Gemini clients); `model`: the one that answered, if known."""
    model = model or (request.model if request is not None else "") or provider.model
    size = ""
    if provider.name == "openai":
        from generation.providers.openai import _size  # the size the request is really sent with

        size = _size(request or ImageRequest(prompt=""), model)
    return PriceKey(provider.name, model, size, str(getattr(provider, "quality", "") or ""))


def price_for(key: PriceKey, *, on: date | None = None) -> Price | None:
    on = on or timezone.localdate()
    candidates = Price.objects.filter(provider=key.provider, effective__lte=on)
    best: Price | None = None
    for price in candidates.order_by("-effective"):
        if not all(getattr(price, part) in ("", getattr(key, part)) for part in ("model", "size", "quality")):
            continue
        if best is None or price.specificity() > best.specificity():
            best = price
    return best


def unit_cost(key: PriceKey, *, batch: bool = False) -> Decimal | None:
    """The table's price of one image; None when unpriced."""
    price = price_for(key)
    return None if price is None else price.image_cost(batch=batch)


@dataclass(frozen=True)
class AttemptCost:
    billed: bool
    cost: Decimal | None  # None with billed = unpriced

    @property
    def unpriced(self) -> bool:
        return self.billed and self.cost is None


NOT_BILLED = AttemptCost(billed=False, cost=None)


def attempt_cost(
    *, price: Price | None, result: ImageResult | None, error: BaseException | None, batch: bool = False
) -> AttemptCost:
    """Providers bill an image they produced: a success, or a failure after a 200 answer (an image the
    checks refused). Quota refusals, 5xx, timeouts and rejected prompts are not billed."""
    billed = result is not None or getattr(error, "http_status", None) == 200
    if not billed:
        return NOT_BILLED
    if price is None:
        return AttemptCost(billed=True, cost=None)
    usage = result.meta.get("usage") if result is not None else None
    return AttemptCost(billed=True, cost=price.image_cost(usage=usage, batch=batch))


def money(amount: Decimal | None, *, unpriced: int = 0) -> str:
    """ "$0.4200", "unpriced", or "$0.42 + 3 unpriced": unpriced is never shown as $0."""
    if amount is None:
        return "unpriced"
    text = f"${amount:.4f}" if amount < 1 else f"${amount:.2f}"
    return f"{text} + {unpriced} unpriced" if unpriced else text


def usd(amount: Decimal | None) -> str | None:
    """The amount as the database keeps it (6 places), for JSON."""
    return None if amount is None else str(Decimal(amount).quantize(Decimal("0.000001")))
