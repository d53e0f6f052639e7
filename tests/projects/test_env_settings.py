from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from scenestudio.settings import env_bool, env_float, env_int


@pytest.mark.parametrize("value", ["ture", "2", "enabled"])
def test_a_misspelt_boolean_names_the_variable(monkeypatch, value: str) -> None:
    monkeypatch.setenv("SOME_FLAG", value)
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env_bool("SOME_FLAG", True)


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("Yes", True), (" off ", False), ("false", False)]
)
def test_booleans_read_the_usual_spellings(monkeypatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("SOME_FLAG", value)
    assert env_bool("SOME_FLAG", not expected) is expected


def test_an_unset_or_empty_variable_keeps_its_default(monkeypatch) -> None:
    monkeypatch.delenv("SOME_FLAG", raising=False)
    monkeypatch.setenv("SOME_NUMBER", "")
    assert (env_bool("SOME_FLAG", True), env_int("SOME_NUMBER", 3)) == (True, 3)


@pytest.mark.parametrize("value", ["abc", "1.5", "1e3"])
def test_a_bad_integer_names_the_variable(monkeypatch, value: str) -> None:
    monkeypatch.setenv("SOME_NUMBER", value)
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER"):
        env_int("SOME_NUMBER", 3)


def test_a_bad_float_names_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("SOME_SECONDS", "ten")
    with pytest.raises(ImproperlyConfigured, match="SOME_SECONDS"):
        env_float("SOME_SECONDS", 1.0)


def test_numbers_are_read(monkeypatch) -> None:
    monkeypatch.setenv("SOME_NUMBER", " 42 ")
    monkeypatch.setenv("SOME_SECONDS", "2.5")
    assert (env_int("SOME_NUMBER", 3), env_float("SOME_SECONDS", 1.0)) == (42, 2.5)
