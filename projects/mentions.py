"""Which characters a scene prompt mentions, by name or alias, as whole words in any script.

Python's ``\\b`` and ``\\w`` are not enough: Indic vowel signs and viramas are combining marks (category M),
so ``\\b`` finds a word boundary inside "গোপালের" right after "গোপাল" and would report a mention. Here a
word character is any letter, mark, number or underscore, and boundaries are checked by hand.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Generic, TypeVar

K = TypeVar("K")

_ALIAS_SEPARATORS = re.compile(
    r"[,;\n\r\uff0c\uff1b\u3001]"
)  # also full-width comma/semicolon, ideographic comma


def find_mentions(prompt: str, characters: Sequence[tuple[K, str, Sequence[str]]]) -> list[K]:
    """Keys of the characters whose name or an alias occurs in `prompt`, in the order given.

    Matching is case-insensitive (casefold, NFKC) and whole-word; a multi-word name matches across any
    run of whitespace. An aliases value given as one string is parsed with `aliases_from_text`.
    To search many prompts for the same characters, build one `MentionFinder` and reuse it.
    """
    return MentionFinder(characters).find(prompt)


class MentionFinder(Generic[K]):
    """One compiled pattern for a set of characters: each prompt is scanned once, whatever the cast size.

    The pattern is an alternation of every name and alias, longest first. Where several names match at
    the same place, all but the longest are prefixes of it ("Gopal" in "Gopal Bhar"), so they are checked
    by walking the longest match, without another search.
    """

    def __init__(self, characters: Sequence[tuple[K, str, Sequence[str]]]) -> None:
        self._order: dict[K, int] = {}
        self._keys: dict[str, list[K]] = {}  # normalized name -> the characters that have it
        for key, name, aliases in characters:
            self._order.setdefault(key, len(self._order))
            if isinstance(aliases, str):
                aliases = aliases_from_text(aliases)
            for candidate in (name, *aliases):
                words = _fold(candidate).split()
                if words:
                    self._keys.setdefault(" ".join(words), []).append(key)
        names = sorted(self._keys, key=lambda n: (-len(n), n))
        # Every shorter name that a longer one starts with, itself included, longest first.
        self._prefixes = {name: [p for p in _prefixes(name) if p in self._keys] for name in names}
        alternation = "|".join(_words_pattern(name) for name in names)
        self._pattern = _compile(alternation) if names else None

    def find(self, prompt: str) -> list[K]:
        if self._pattern is None:
            return []
        text = _fold(prompt)
        found: set[K] = set()
        pos = 0
        while len(found) < len(self._order) and (match := self._pattern.search(text, pos)):
            start = match.start()
            # The start boundary is the same for every name matching here: one check rejects them all.
            if not (start > 0 and _is_word_char(text[start]) and _is_word_char(text[start - 1])):
                longest = " ".join(match.group().split())
                for name in self._prefixes[longest]:
                    end = _end_of(name, text, start)
                    if not (end < len(text) and _is_word_char(text[end - 1]) and _is_word_char(text[end])):
                        found.update(self._keys[name])
            # Search again one character later: "Ram" in "Ramesh and Ram" must reach the second, and
            # "Bhar" inside "Gopal Bhar" is a mention too.
            pos = start + 1
        return sorted(found, key=self._order.__getitem__)


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


# An alias for re.compile, so a test can count how many patterns an import compiles.
_compile = re.compile


def _words_pattern(name: str) -> str:
    return r"\s+".join(re.escape(word) for word in name.split(" "))


def _prefixes(name: str) -> list[str]:
    """`name` and every leading part of it, longest first (parts end inside a word too: "Ra" in "Ram")."""
    return [name[:end] for end in range(len(name), 0, -1) if not name[end - 1].isspace()]


def _end_of(name: str, text: str, start: int) -> int:
    """Where `name` (normalized, known to match `text` at `start`) ends; its spaces matched whitespace."""
    pos = start
    for index, word in enumerate(name.split(" ")):
        if index:
            while text[pos].isspace():
                pos += 1
        pos += len(word)
    return pos
