"""When a spent per-day quota comes back, and how the page says it.

Gemini resets per-day quotas at midnight Pacific time; OpenAI says when in x-ratelimit-reset-requests;
otherwise the configured reset (GEN_DAILY_RESET_TZ midnight). GEN_DAILY_RESET_SECONDS shortens the
"day" for tests and demos against the fake server.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from generation.providers.base import DailyQuotaError

PACIFIC = ZoneInfo("America/Los_Angeles")


def next_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone)
    tomorrow = (local + timedelta(days=1)).date()
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone)


def daily_reset_at(*, provider: str, error: DailyQuotaError | None, now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    shortened = getattr(settings, "GENERATION_DAILY_RESET_SECONDS", None)
    if shortened:
        return now + timedelta(seconds=float(shortened))
    if provider == "gemini":
        return next_midnight(now, PACIFIC)
    if error is not None and error.retry_after:
        return now + timedelta(seconds=error.retry_after)
    return next_midnight(now, ZoneInfo(getattr(settings, "GENERATION_DAILY_RESET_TZ", "UTC")))


def in_words(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else "under a minute"


def parked_message(*, provider: str, resume_at: datetime, now: datetime | None = None) -> str:
    """'Daily quota reached: resumes automatically at 00:00 PT (in 5 h 12 min)'."""
    now = now or timezone.now()
    if provider == "gemini":
        clock = resume_at.astimezone(PACIFIC).strftime("%H:%M") + " PT"
    else:
        clock = timezone.localtime(resume_at).strftime("%H:%M %Z").strip()
    wait = in_words((resume_at - now).total_seconds())
    return f"Daily quota reached: resumes automatically at {clock} (in {wait})"
