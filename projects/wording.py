"""Words for counts, in one place: every message that says how many of something goes through these."""

from __future__ import annotations

from collections.abc import Sequence


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """The noun alone, singular for exactly one ("1 scene", "0 scenes", "2 scenes")."""
    return singular if count == 1 else (plural_form or singular + "s")


def count_noun(count: int, singular: str, plural_form: str | None = None) -> str:
    """ "1 scene", "14 scenes", "0 character appearances"."""
    return f"{count} {plural(count, singular, plural_form)}"


def all_of(count: int, singular: str, plural_form: str | None = None) -> str:
    """ "all 20 scenes", but "the one scene": "all 1 scene" is not English."""
    if count == 1:
        return f"the one {singular}"
    return f"all {count_noun(count, singular, plural_form)}"


def were(count: int) -> str:
    return "was" if count == 1 else "were"


def listing(items: Sequence[object], *, limit: int = 5) -> str:
    """ "3", "3 and 5", "3, 5 and 9", "3, 5, 9, 11, 12 and 4 more": short enough for a one-line summary."""
    words = [str(item) for item in items]
    if len(words) > limit:
        return ", ".join(words[:limit]) + f" and {len(words) - limit} more"
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
