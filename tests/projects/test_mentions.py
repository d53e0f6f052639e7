from __future__ import annotations

import re

import pytest

from projects.mentions import aliases_from_text, find_mentions

CAST = [
    ("gopal", "Gopal Bhar", ["Gopal"]),
    ("raja", "Krishnachandra", ["the king", "Raja"]),
    ("ram", "Ram", []),
]


def test_it_finds_a_name_as_a_whole_word() -> None:
    assert find_mentions("Ram waits by the river.", CAST) == ["ram"]


@pytest.mark.parametrize("prompt", ["Ramesh waits.", "A program runs.", "Ram_2 waits.", "Ram2 waits"])
def test_it_ignores_a_name_inside_another_word(prompt: str) -> None:
    assert find_mentions(prompt, CAST) == []


def test_it_finds_a_name_after_a_rejected_occurrence() -> None:
    assert find_mentions("Ramesh calls Ram.", CAST) == ["ram"]


def test_it_is_case_insensitive() -> None:
    assert find_mentions("RAM and gopal bhar", CAST) == ["gopal", "ram"]


def test_it_folds_case_beyond_lowercase() -> None:
    assert find_mentions("Die STRASSE ist leer.", [(1, "Straße", [])]) == [1]


def test_it_matches_aliases() -> None:
    assert find_mentions("The King laughs.", CAST) == ["raja"]


def test_it_matches_multi_word_names_across_any_whitespace() -> None:
    cast = [("gopal", "Gopal Bhar", [])]
    for prompt in ["Gopal  Bhar grins", "Gopal\nBhar grins", "Gopal\u00a0Bhar grins", "gopal\t bhar"]:
        assert find_mentions(prompt, cast) == ["gopal"], prompt


def test_it_does_not_match_part_of_a_multi_word_name() -> None:
    assert find_mentions("Gopal Bharat and Bhar", [("gopal", "Gopal Bhar", [])]) == []


def test_it_returns_each_key_once_in_the_order_of_the_characters() -> None:
    prompt = "Ram meets the king, then Gopal, then Ram again."
    assert find_mentions(prompt, CAST) == ["gopal", "raja", "ram"]


def test_it_matches_names_next_to_punctuation() -> None:
    assert find_mentions("“Ram!” said Gopal.", CAST) == ["gopal", "ram"]


def test_it_matches_a_bengali_name_as_a_whole_word() -> None:
    cast = [("gopal", "গোপাল", ["গোপাল ভাঁড়"])]
    assert find_mentions("গোপাল বলল, রাজা হাসলেন।", cast) == ["gopal"]
    assert find_mentions("রাজা ডাকলেন গোপাল।", cast) == ["gopal"]


def test_it_does_not_match_an_inflected_bengali_name() -> None:
    # "গোপালের" (Gopal's) ends in a vowel sign: Python's \b would wrongly see a boundary inside it.
    assert find_mentions("গোপালের বাড়ি", [("gopal", "গোপাল", [])]) == []


def test_it_does_not_match_a_bengali_name_inside_a_longer_word() -> None:
    assert find_mentions("শ্রীগোপাল এলেন", [("gopal", "গোপাল", [])]) == []


def test_it_matches_names_in_other_scripts() -> None:
    cast = [("anna", "Анна", [])]
    assert find_mentions("Анна и Борис", cast) == ["anna"]
    assert find_mentions("Аннушка", cast) == []


def test_it_matches_a_name_that_ends_in_punctuation() -> None:
    assert find_mentions("Enter Dr. Rao.", [("rao", "Dr. Rao", [])]) == ["rao"]


def test_it_ignores_empty_names_and_aliases() -> None:
    assert find_mentions("Anything at all", [("x", "", ["", "  "])]) == []


def test_it_accepts_aliases_given_as_one_string() -> None:
    assert find_mentions("The king laughs", [("raja", "Krishnachandra", "Raja; the king")]) == ["raja"]


def test_it_works_with_any_key_type() -> None:
    key = object()
    assert find_mentions("Ram", [(key, "Ram", ())]) == [key]


def test_aliases_from_text_splits_trims_and_deduplicates() -> None:
    assert aliases_from_text(" Gopal, Bhar;\ngopal\n\n  the   king ;; ") == ["Gopal", "Bhar", "the king"]


def test_aliases_from_text_handles_an_empty_field() -> None:
    assert aliases_from_text("") == []
    assert aliases_from_text(" , ;\n ") == []


def test_it_finds_names_that_overlap_or_share_a_start() -> None:
    cast = [("full", "Gopal Bhar", []), ("first", "Gopal", []), ("last", "Bhar", []), ("ra", "Ra", [])]
    assert find_mentions("Gopal  Bhar smiles", cast) == ["full", "first", "last"]
    assert find_mentions("Gopal Bharat and Ra", cast) == ["first", "ra"]


def test_a_finder_compiles_one_pattern_for_any_number_of_prompts(monkeypatch) -> None:
    from projects import mentions

    compiled: list[str] = []

    def counting(pattern: str, *args):
        compiled.append(pattern)
        return re.compile(pattern, *args)

    monkeypatch.setattr(mentions, "_compile", counting)
    finder = mentions.MentionFinder(CAST)
    results = [finder.find(f"Scene {i}: Ram and the king") for i in range(300)]
    assert results == [["raja", "ram"]] * 300
    assert len(compiled) == 1
