"""Turn a pasted or uploaded story into scenes, in order.

Pure Python on purpose (no Django): the import form, the management commands and the tests all call
`parse_story` the same way, and every mistake in the user's file comes back as a `StoryFormatError`
that names the line to fix.

Formats:

- ``text``: scenes are paragraphs separated by blank lines; the lines of a paragraph are joined with a space.
- ``numbered``: ``1. text`` / ``2) text`` items or ``Scene N:`` headings; see `_parse_numbered`.
- ``csv``: a header with a ``prompt`` column, optional ``title`` and ``characters`` columns.
- ``json``: a list of strings or of objects with ``prompt``, optional ``title`` and ``characters``.

CSV and JSON also read the storyboard notes ``shot``, ``camera``, ``duration`` and ``dialogue``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from projects.mentions import aliases_from_text
from projects.notes import NOTE_FIELDS, NOTE_MAX_LENGTH

FORMATS = ("auto", "text", "numbered", "csv", "json")
# A storyboard with more panels than this is almost certainly the wrong file (a log, a data dump), and
# would queue an expensive run of image generations by accident.
MAX_SCENES = 2000
# The columns' lengths (Scene.title, Character.name): PostgreSQL refuses longer values and SQLite keeps
# them, so the importer refuses them first, the same way on both.
TITLE_MAX_LENGTH = 200
NAME_MAX_LENGTH = 100

_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".json": "json"}
_PROSE_EXTENSIONS = {".txt", ".text", ".md", ".markdown"}
_CSV_DELIMITERS = (",", ";", "\t")
# "[" alone is not enough: "[Opening shot] A busy market" is a plain-text story.
_JSON_START = re.compile(r"\A\s*\[\s*[{\"\]]")
_LIST_MARKER = re.compile(r"^\s*(\d{1,6})[.)](?:\s+(.*))?$")
_SCENE_HEADING = re.compile(r"^\s*(?:#{1,6}\s*)?scene\s+(\d{1,6})\s*(?:[:.\-\u2013\u2014]\s*(.*))?$", re.I)


@dataclass(frozen=True)
class ParsedScene:
    prompt: str
    title: str = ""
    characters: tuple[str, ...] = ()
    notes: tuple[tuple[str, str], ...] = ()  # (shot|camera|duration|dialogue, text), filled ones only


class StoryFormatError(ValueError):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"Line {line}: {message}" if line is not None else message)
        self.message = message
        self.line = line


def parse_story(text: str, *, fmt: str = "auto", filename: str = "") -> list[ParsedScene]:
    if fmt not in FORMATS:
        raise StoryFormatError(f"Unknown story format {fmt!r}; choose one of {', '.join(FORMATS)}")
    text = _normalize(text)
    if fmt == "auto":
        fmt = detect_format(text, filename=filename)
    scenes = _PARSERS[fmt](text)
    if not scenes:
        raise StoryFormatError("The story has no scenes")
    if len(scenes) > MAX_SCENES:
        raise StoryFormatError(
            f"The story has {len(scenes)} scenes; at most {MAX_SCENES} can be imported at once"
        )
    for number, scene in enumerate(scenes, start=1):
        _check_storable(scene, number)
    return scenes


def _check_storable(scene: ParsedScene, number: int) -> None:
    """Refuse what a database column cannot hold: NULs, unpaired surrogates ("\\ud800" in JSON), overlong
    titles and names."""
    for text in (scene.prompt, scene.title, *scene.characters, *(value for _, value in scene.notes)):
        if "\x00" in text:
            raise StoryFormatError(f"Scene {number} contains a NUL character, which cannot be stored")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            message = f"Scene {number} contains an unpaired surrogate (such as \\ud800): not valid text"
            raise StoryFormatError(message) from None
    for name, value in scene.notes:
        if len(value) > NOTE_MAX_LENGTH[name]:
            raise StoryFormatError(
                f"Scene {number}: {name} may have at most {NOTE_MAX_LENGTH[name]} characters"
            )
    if len(scene.title) > TITLE_MAX_LENGTH:
        raise StoryFormatError(f"Scene {number}: a title may have at most {TITLE_MAX_LENGTH} characters")
    for name in scene.characters:
        if len(name) > NAME_MAX_LENGTH:
            raise StoryFormatError(
                f"Scene {number}: a character name may have at most {NAME_MAX_LENGTH} characters"
            )


def detect_format(text: str, *, filename: str = "") -> str:
    """The format of `text` (already BOM-stripped, "\\n" line endings): extension first, then content.

    A .txt or .md file is prose, so only plain text or numbered scenes are considered for it.
    """
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    first = _first_line(text)
    if suffix not in _PROSE_EXTENSIONS:
        if _JSON_START.match(text):
            return "json"
        if _csv_delimiter(first) is not None:
            return "csv"
    # Only the first line decides: a numbered marker deep inside prose is more likely a list in a paragraph.
    if _LIST_MARKER.match(first) or _SCENE_HEADING.match(first):
        return "numbered"
    return "text"


def _normalize(text: str) -> str:
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _first_line(text: str) -> str:
    return next((line for line in text.split("\n") if line.strip()), "")


# Plain text


def _parse_text(text: str) -> list[ParsedScene]:
    scenes: list[ParsedScene] = []
    paragraph: list[str] = []
    for line in [*text.split("\n"), ""]:
        if line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            scenes.append(ParsedScene(prompt=" ".join(paragraph)))
            paragraph = []
    return scenes


# Numbered


@dataclass
class _Draft:
    kind: str  # "list" or "scene"
    number: int
    heading: str
    body: list[str] = field(default_factory=list)

    def finish(self) -> ParsedScene:
        if self.kind == "scene" and self.body:
            return ParsedScene(prompt=" ".join(self.body), title=self.heading)
        return ParsedScene(prompt=" ".join(part for part in [self.heading, *self.body] if part))


def _parse_numbered(text: str) -> list[ParsedScene]:
    """Scenes introduced by ``1. text`` / ``1) text`` items or ``Scene 1: ...`` headings.

    - Lines after a marker, up to the next marker, continue that scene (blank lines are ignored).
    - ``Scene 1: The market`` followed by lines of text: "The market" is the title and the following lines
      are the prompt. With nothing after the heading, the heading text itself is the prompt.
    - ``1. text`` items have no title: the item text and its continuation lines are the prompt.
    - The first marker fixes the style, so a ``1.`` list inside a ``Scene N`` body stays part of the body.
    - Numbers may start anywhere (a pasted excerpt) but must then go up by one; text before the first
      marker is an error, as it would otherwise be silently dropped.
    """
    drafts: list[_Draft] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        marker = _match_marker(line, drafts[0].kind if drafts else None)
        if marker is not None:
            kind, number, heading = marker
            if drafts and number != drafts[-1].number + 1:
                previous = drafts[-1].number
                message = f"Scene {number} follows scene {previous}; expected scene {previous + 1}"
                raise StoryFormatError(message, lineno)
            drafts.append(_Draft(kind, number, heading))
        elif line.strip():
            if not drafts:
                raise StoryFormatError("Text before the first numbered scene", lineno)
            drafts[-1].body.append(line.strip())
    return [draft.finish() for draft in drafts]


def _match_marker(line: str, kind: str | None) -> tuple[str, int, str] | None:
    for candidate, pattern in (("list", _LIST_MARKER), ("scene", _SCENE_HEADING)):
        if kind in (None, candidate) and (match := pattern.match(line)):
            return candidate, int(match[1]), (match[2] or "").strip()
    return None


# CSV


def _csv_delimiter(header_line: str) -> str | None:
    """The delimiter under which `header_line` has a "prompt" column; Excel in many locales writes ";"."""
    for delimiter in _CSV_DELIMITERS:
        if delimiter in header_line or header_line.strip().casefold() == "prompt":
            cells = next(csv.reader([header_line], delimiter=delimiter), [])
            if any(cell.strip().casefold() == "prompt" for cell in cells):
                return delimiter
    return None


def _parse_csv(text: str) -> list[ParsedScene]:
    rows = _csv_rows(text, _csv_delimiter(_first_line(text)) or ",")
    header, header_line = next(rows, ([], 0))
    if not header:
        return []
    columns = _csv_columns(header, header_line)
    scenes: list[ParsedScene] = []
    for row, lineno in rows:
        if len(row) != len(header):
            raise StoryFormatError(f"CSV row has {_fields(len(row))}, expected {len(header)}", lineno)
        scenes.append(_csv_scene(row, columns))
    return scenes


def _csv_rows(text: str, delimiter: str) -> Iterator[tuple[list[str], int]]:
    """Yield (row, line the row starts on), skipping blank rows (Excel pads files with ",,,")."""
    # strict: a stray quote is reported at its row instead of silently swallowing the rest of the file.
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    start = 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield row, start
            start = reader.line_num + 1
    except csv.Error as exc:
        raise StoryFormatError(f"CSV could not be read: {exc}", start) from exc


def _fields(count: int) -> str:
    return "1 field" if count == 1 else f"{count} fields"


def _csv_columns(header: list[str], lineno: int) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        columns.setdefault(name.strip().casefold(), index)
    if "prompt" not in columns:
        found = ", ".join(cell.strip() for cell in header)
        raise StoryFormatError(f'CSV header has no "prompt" column (found: {found})', lineno)
    return columns


def _csv_scene(row: list[str], columns: dict[str, int]) -> ParsedScene:
    def cell(name: str) -> str:
        return row[columns[name]].strip() if name in columns else ""

    return ParsedScene(
        prompt=cell("prompt"),
        title=cell("title"),
        characters=_split_names(cell("characters")),
        notes=tuple((name, cell(name)) for name in NOTE_FIELDS if cell(name)),
    )


def _split_names(value: str) -> tuple[str, ...]:
    # Same rules as a character's alias field, so "Gopal; Bhar" means the same thing everywhere.
    return tuple(aliases_from_text(value))


# JSON


def _parse_json(text: str) -> list[ParsedScene]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoryFormatError(f"JSON could not be read: {exc.msg}", exc.lineno) from exc
    except RecursionError:
        raise StoryFormatError("JSON could not be read: it is nested too deeply") from None
    if not isinstance(data, list):
        raise StoryFormatError("A JSON story must be a list of scenes", 1)
    scenes: list[ParsedScene] = []
    for index, item in enumerate(data):
        try:
            scenes.append(_json_scene(item))
        except _ItemError as exc:
            line = _json_item_line(text, index)
            raise StoryFormatError(f"Item {index + 1}: {exc}", line) from None
    return scenes


class _ItemError(Exception):
    pass


def _json_scene(item: Any) -> ParsedScene:
    if isinstance(item, str):
        return ParsedScene(prompt=item.strip())
    if not isinstance(item, dict):
        raise _ItemError(f"expected an object or a string, found {_json_type(item)}")
    if "prompt" not in item:
        raise _ItemError('the scene has no "prompt"')
    return ParsedScene(
        prompt=_json_text(item, "prompt"),
        title=_json_text(item, "title"),
        characters=_json_characters(item.get("characters")),
        notes=tuple((name, text) for name in NOTE_FIELDS if (text := _json_note(item, name))),
    )


def _json_note(item: dict, key: str) -> str:
    value = item.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # "duration": 3
    return _json_text(item, key)


def _json_text(item: dict, key: str) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _ItemError(f'"{key}" must be text, found {_json_type(value)}')
    return value.strip()


def _json_characters(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return _split_names(value)
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return _split_names("\n".join(value))
    raise _ItemError('"characters" must be a list of names or a "name; name" string')


def _json_type(value: Any) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _json_item_line(text: str, index: int) -> int | None:
    """The line where item `index` of the top-level list starts; `text` is known to be valid JSON."""
    decoder = json.JSONDecoder()
    pos = _skip_space(text, text.index("[") + 1)
    for current in range(index + 1):
        if text.startswith("]", pos):
            return None
        if current == index:
            return text.count("\n", 0, pos) + 1
        _, pos = decoder.raw_decode(text, pos)
        pos = _skip_space(text, pos)
        pos = _skip_space(text, pos + 1) if text.startswith(",", pos) else pos
    return None


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


_PARSERS = {"text": _parse_text, "numbered": _parse_numbered, "csv": _parse_csv, "json": _parse_json}
