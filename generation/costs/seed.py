"""The providers' published prices, as the data migration seeds them (USD; dated by publication).

Self-hosted and offline providers (sketch, a1111, comfyui, simulated) are priced at $0: they bill
nothing. Anything else without a row is unpriced, never free.
"""

from __future__ import annotations

OPENAI = "https://platform.openai.com/docs/pricing"
GEMINI = "https://ai.google.dev/gemini-api/docs/pricing"

# (provider, model, size, quality, per_image, input_per_million, output_per_million, effective, source)
PUBLISHED: list[tuple] = [
    *[
        ("openai", "gpt-image-1", size, quality, price, "5", "40", "2025-04-23", OPENAI)
        for quality, square, wide in (
            ("low", "0.011", "0.016"),
            ("medium", "0.042", "0.063"),
            ("high", "0.167", "0.25"),
        )
        for size, price in (("1024x1024", square), ("1536x1024", wide), ("1024x1536", wide))
    ],
    *[
        ("openai", "gpt-image-1-mini", size, quality, price, "2", "8", "2025-10-06", OPENAI)
        for quality, square, wide in (
            ("low", "0.005", "0.006"),
            ("medium", "0.011", "0.015"),
            ("high", "0.036", "0.052"),
        )
        for size, price in (("1024x1024", square), ("1536x1024", wide), ("1024x1536", wide))
    ],
    ("openai", "dall-e-3", "1024x1024", "", "0.04", None, None, "2023-11-06", OPENAI),
    ("openai", "dall-e-3", "", "", "0.08", None, None, "2023-11-06", OPENAI),
    ("gemini", "gemini-2.5-flash-image", "", "", "0.039", "0.30", "30", "2025-08-26", GEMINI),
    ("gemini", "gemini-2.5-flash-image-preview", "", "", "0.039", "0.30", "30", "2025-08-26", GEMINI),
    ("gemini", "imagen-4.0-generate-001", "", "", "0.04", None, None, "2025-08-14", GEMINI),
    ("gemini", "imagen-4.0-fast-generate-001", "", "", "0.02", None, None, "2025-08-14", GEMINI),
    ("gemini", "imagen-4.0-ultra-generate-001", "", "", "0.06", None, None, "2025-08-14", GEMINI),
    ("gemini", "imagen-3.0-generate-002", "", "", "0.03", None, None, "2025-02-06", GEMINI),
    ("sketch", "", "", "", "0", None, None, "2026-01-01", ""),
    ("simulated", "", "", "", "0", None, None, "2026-01-01", ""),
    ("a1111", "", "", "", "0", None, None, "2026-01-01", ""),
    ("comfyui", "", "", "", "0", None, None, "2026-01-01", ""),
]


def prices_seed(price_model) -> int:
    """Add the published prices that are missing (idempotent); `price_model` is Price, or the
    migration's historical model. Returns how many rows it added."""
    from decimal import Decimal

    added = 0
    for provider, model, size, quality, per_image, tokens_in, tokens_out, effective, source in PUBLISHED:
        _, created = price_model.objects.get_or_create(
            provider=provider,
            model=model,
            size=size,
            quality=quality,
            effective=effective,
            defaults={
                "per_image": None if per_image is None else Decimal(per_image),
                "input_per_million": None if tokens_in is None else Decimal(tokens_in),
                "output_per_million": None if tokens_out is None else Decimal(tokens_out),
                "source": source,
            },
        )
        added += created
    return added
