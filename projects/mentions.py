"""Which characters a scene prompt mentions, by name or alias, as whole words in any script.

Python's ``\\b`` and ``\\w`` are not enough: Indic vowel signs and viramas are combining marks (category M),
so ``\\b`` finds a word boundary inside "গোপালের" right after "গোপাল" and would report a mention. Here a
word character is any letter, mark, number or underscore, and boundaries are checked by hand.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import TypeVar

K = TypeVar("K")

_ALIAS_SEPARATORS = re.compile(
    r"[,;\n\r\uff0c\uff1b\u3001]"
)  # also full-width comma/semicolon, ideographic comma


def find_mentions(prompt: str, characters: Sequence[tuple[K, str, Sequence[str]]]) -> list[K]:
    """Keys of the characters whose name or an alias occurs in `prompt`, in the order given.

    Matching is case-insensitive (casefold, NFKC) and whole-word; a multi-word name matches across any
    run of whitespace. An aliases value given as one string is parsed with `aliases_from_text`.
    """
    text = _fold(prompt)
    found: list[K] = []
    for key, name, aliases in characters:
        if isinstance(aliases, str):
            aliases = aliases_from_text(aliases)
        if any(_occurs(text, _pattern(candidate)) for candidate in (name, *aliases) if candidate.strip()):
            found.append(key)
    return found


def aliases_from_text(text: str) -> list[str]:
    """Parse an alias field: names separated by commas, semicolons or newlines."""
    aliases: dict[str, str] = {}
    for part in _ALIAS_SEPARATORS.split(text or ""):
        alias = " ".join(part.split())
        if alias:
            aliases.setdefault(_fold(alias), alias)
    return list(aliases.values())


def _fold(text: str) -> str:
    # NFKC before casefold so compatibility forms (full-width letters, ligatures) fold too, and again after,
    # because casefold can produce sequences that NFKC composes.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _is_word_char(char: str) -> bool:
    return char == "_" or unicodedata.category(char)[0] in "LMN"


@lru_cache(maxsize=2048)
def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"\s+".join(re.escape(word) for word in _fold(name).split()))


def _occurs(text: str, pattern: re.Pattern[str]) -> bool:
    # Search again one character later after a rejected hit: "Ram" in "Ramesh and Ram" must reach the second.
    pos = 0
    while match := pattern.search(text, pos):
        if _bounded(text, match.start(), match.end()):
            return True
        pos = match.start() + 1
    return False


def _bounded(text: str, start: int, end: int) -> bool:
    # Only a word character at the edge of the name needs a boundary: "Dr." may be followed by anything.
    if start > 0 and _is_word_char(text[start]) and _is_word_char(text[start - 1]):
        return False
    return not (end < len(text) and _is_word_char(text[end - 1]) and _is_word_char(text[end]))
