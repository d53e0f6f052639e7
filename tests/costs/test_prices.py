from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from generation.costs.models import Price
from generation.costs.prices import PriceKey, attempt_cost, money, price_for, unit_cost
from generation.providers.base import ImageResult, QuotaError, TransientError

pytestmark = pytest.mark.django_db


def test_the_seeded_table_has_the_published_gpt_image_prices_by_size_and_quality():
    assert unit_cost(PriceKey("openai", "gpt-image-1", "1536x1024", "medium")) == Decimal("0.063")
    assert unit_cost(PriceKey("openai", "gpt-image-1", "1024x1024", "high")) == Decimal("0.167")
    assert unit_cost(PriceKey("gemini", "imagen-4.0-generate-001")) == Decimal("0.04")
    assert price_for(PriceKey("openai", "gpt-image-1", "1024x1024", "low")).effective == date(2025, 4, 23)


def test_batch_prices_are_half():
    assert unit_cost(PriceKey("openai", "gpt-image-1", "1536x1024", "medium"), batch=True) == Decimal(
        "0.0315"
    )


def test_unpriced_is_distinct_from_free():
    assert unit_cost(PriceKey("openai", "some-new-model")) is None
    assert unit_cost(PriceKey("sketch", "")) == Decimal(0)
    assert money(None) == "unpriced"
    assert money(Decimal(0)) == "$0.0000"
    assert money(Decimal("1.5"), unpriced=2) == "$1.50 + 2 unpriced"


def test_the_newest_price_in_effect_wins_and_a_future_one_waits():
    key = PriceKey("openai", "gpt-image-1", "1536x1024", "medium")
    Price.objects.create(provider="openai", model="gpt-image-1", per_image="0.05", effective=date(2026, 1, 1))
    Price.objects.create(provider="openai", model="gpt-image-1", per_image="9", effective=date(2999, 1, 1))
    # The more specific row of 2025 still beats a model-wide row.
    assert unit_cost(key) == Decimal("0.063")
    assert unit_cost(PriceKey("openai", "gpt-image-1", "auto", "medium")) == Decimal("0.05")


def test_usage_gives_the_actual_cost_and_only_billed_attempts_cost_anything():
    price = price_for(PriceKey("openai", "gpt-image-1", "1536x1024", "medium"))
    usage = {"input_tokens": 10, "output_tokens": 1056}
    result = ImageResult(image=b"png", meta={"usage": usage})
    cost = attempt_cost(price=price, result=result, error=None)
    assert cost.billed and cost.cost == Decimal("0.00005") + Decimal("0.04224")
    without_usage = attempt_cost(price=price, result=ImageResult(image=b"png"), error=None)
    assert without_usage.cost == Decimal("0.063")
    assert not attempt_cost(price=price, result=None, error=QuotaError("429")).billed
    assert not attempt_cost(price=price, result=None, error=TransientError("503", http_status=503)).billed
    broken = TransientError("not an image", http_status=200)
    assert attempt_cost(price=price, result=None, error=broken).billed
    unpriced = attempt_cost(price=None, result=result, error=None)
    assert unpriced.billed and unpriced.unpriced and unpriced.cost is None
