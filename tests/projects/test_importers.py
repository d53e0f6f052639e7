from __future__ import annotations

import json

import pytest

from projects.importers import (
    MAX_SCENES,
    NAME_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    ParsedScene,
    StoryFormatError,
    detect_format,
    parse_story,
)


def prompts(text: str, **options: str) -> list[str]:
    return [scene.prompt for scene in parse_story(text, **options)]


def error(text: str, **options: str) -> StoryFormatError:
    with pytest.raises(StoryFormatError) as info:
        parse_story(text, **options)
    return info.value


# Plain text


def test_it_splits_plain_text_on_blank_lines() -> None:
    assert prompts("A market.\n\nA river.\n\n\nA palace.") == ["A market.", "A river.", "A palace."]


def test_it_treats_whitespace_only_lines_as_blank() -> None:
    assert prompts("A market.\n   \t\nA river.") == ["A market.", "A river."]


def test_it_joins_the_lines_of_a_paragraph_with_a_space() -> None:
    assert prompts("  Gopal walks\n  into the market.  \n\nThe king waits.") == [
        "Gopal walks into the market.",
        "The king waits.",
    ]


def test_it_reads_plain_text_with_crlf_line_endings() -> None:
    assert prompts("Gopal walks\r\ninto the market.\r\n\r\nThe king waits.\r\n") == [
        "Gopal walks into the market.",
        "The king waits.",
    ]


def test_it_strips_a_byte_order_mark() -> None:
    assert prompts("\ufeffA market.\n\nA river.") == ["A market.", "A river."]


def test_it_does_not_mistake_a_bracketed_opening_for_json() -> None:
    assert prompts("[Opening shot] A busy market.\n\nA river.") == [
        "[Opening shot] A busy market.",
        "A river.",
    ]


# Numbered


def test_it_reads_numbered_items_with_dots_and_parentheses() -> None:
    assert prompts("1. A market.\n2) A river.\n3. A palace.") == ["A market.", "A river.", "A palace."]


def test_it_appends_continuation_lines_to_the_current_item() -> None:
    text = "1. Gopal walks\ninto the market.\n\n2. The king\n   waits."
    assert prompts(text) == ["Gopal walks into the market.", "The king waits."]


def test_it_reads_a_scene_heading_title_and_the_body_below_it() -> None:
    text = "Scene 1: The market\nGopal haggles\nover mangoes.\n\nScene 2: The court\nThe king laughs."
    assert parse_story(text) == [
        ParsedScene(prompt="Gopal haggles over mangoes.", title="The market"),
        ParsedScene(prompt="The king laughs.", title="The court"),
    ]


def test_it_uses_the_heading_text_as_the_prompt_when_no_body_follows() -> None:
    assert parse_story("Scene 1: Gopal in the market\nScene 2: The king laughs") == [
        ParsedScene(prompt="Gopal in the market"),
        ParsedScene(prompt="The king laughs"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Scene 1 - A market\nScene 2 - A river",
        "SCENE 1: A market\nSCENE 2: A river",
        "## Scene 1: A market\n## Scene 2: A river",
    ],
)
def test_it_accepts_scene_heading_variants(text: str) -> None:
    assert prompts(text) == ["A market", "A river"]


def test_it_keeps_a_numbered_list_inside_a_scene_body() -> None:
    text = "Scene 1: Shots\n1. Wide shot\n2. Close-up\nScene 2: End\nFade out."
    assert parse_story(text)[0] == ParsedScene(prompt="1. Wide shot 2. Close-up", title="Shots")


def test_it_keeps_an_empty_scene_heading_as_an_empty_prompt() -> None:
    assert prompts("Scene 1:\nScene 2: A river") == ["", "A river"]


def test_it_allows_an_excerpt_that_starts_after_scene_one() -> None:
    assert prompts("Scene 12: A market\nScene 13: A river") == ["A market", "A river"]


def test_it_reports_numbers_out_of_order_with_their_line() -> None:
    exc = error("1. A market\n2. A river\n\n4. A palace")
    assert exc.line == 4
    assert str(exc) == "Line 4: Scene 4 follows scene 2; expected scene 3"


def test_it_reports_a_repeated_number() -> None:
    assert error("Scene 1: A\nScene 1: B").line == 2


def test_it_reports_text_before_the_first_number() -> None:
    exc = error("Our story\n\n1. A market", fmt="numbered")
    assert (exc.line, exc.message) == (1, "Text before the first numbered scene")


def test_it_reads_numbered_scenes_with_crlf_and_a_bom() -> None:
    assert prompts("\ufeff1. A market\r\nat noon\r\n2. A river\r\n") == ["A market at noon", "A river"]


# CSV


def test_it_reads_csv_with_title_and_characters() -> None:
    text = (
        "title,prompt,characters\n"
        "Market,Gopal haggles,Gopal; Raja\n"
        'Court,"The king, laughing","Raja, Gopal"\n'
    )
    assert parse_story(text) == [
        ParsedScene(prompt="Gopal haggles", title="Market", characters=("Gopal", "Raja")),
        ParsedScene(prompt="The king, laughing", title="Court", characters=("Raja", "Gopal")),
    ]


def test_it_reads_the_csv_header_case_insensitively() -> None:
    assert parse_story(" Prompt , TITLE\nA market,Open\n") == [ParsedScene(prompt="A market", title="Open")]


def test_it_reads_quoted_multiline_csv_fields() -> None:
    assert prompts('prompt,title\n"A market\nat noon",x\nA river,y\n') == ["A market\nat noon", "A river"]


def test_it_reads_csv_with_crlf_line_endings_and_a_bom() -> None:
    assert prompts('\ufeffprompt,title\r\nA market,x\r\n"A\r\nriver",y\r\n') == ["A market", "A\nriver"]


def test_it_reads_semicolon_separated_csv() -> None:
    assert parse_story("prompt;title\nA market, at noon;Open\n") == [
        ParsedScene(prompt="A market, at noon", title="Open")
    ]


def test_it_keeps_empty_csv_prompts_and_skips_blank_rows() -> None:
    assert prompts("prompt,title\nA market,x\n,y\n,,\n\nA river,z\n") == ["A market", "", "A river"]


def test_it_reports_a_missing_prompt_column_at_line_one() -> None:
    exc = error("title,characters\nA,B\n", fmt="csv")
    assert exc.line == 1
    assert "prompt" in exc.message


def test_it_reports_a_csv_row_with_the_wrong_number_of_fields() -> None:
    text = 'prompt,title,characters\nA,t,c\n"B\nstill B",t,c\nC,t,c\n\nD,t,c,extra\n'
    exc = error(text)
    assert str(exc) == "Line 7: CSV row has 4 fields, expected 3"


def test_it_reports_the_starting_line_of_a_short_multiline_row() -> None:
    assert error('prompt,title\nA,t\n"B\nstill B"\nC,t\n').line == 3


def test_it_reports_an_unclosed_csv_quote() -> None:
    exc = error('prompt,title\nA,t\n"B,t\nC,t\n')
    assert exc.line == 3
    assert exc.message.startswith("CSV could not be read")


def test_it_reports_a_csv_file_with_only_a_header_as_empty() -> None:
    assert error("prompt,title\n").message == "The story has no scenes"


# JSON


def test_it_reads_a_json_list_of_objects() -> None:
    text = (
        '[{"prompt": " A market ", "title": "Open", "characters": ["Gopal", "Raja"]},\n{"prompt": "A river"}]'
    )
    assert parse_story(text) == [
        ParsedScene(prompt="A market", title="Open", characters=("Gopal", "Raja")),
        ParsedScene(prompt="A river"),
    ]


def test_it_reads_json_characters_given_as_a_string() -> None:
    scene = parse_story('[{"prompt": "A", "characters": "Gopal; Raja, Gopal"}]')[0]
    assert scene.characters == ("Gopal", "Raja")


def test_it_reads_a_json_list_of_strings() -> None:
    assert prompts('["A market", "A river"]') == ["A market", "A river"]


def test_it_keeps_empty_json_prompts() -> None:
    assert prompts('[{"prompt": ""}, {"prompt": null}, "A river"]') == ["", "", "A river"]


def test_it_reports_malformed_json_with_its_line() -> None:
    exc = error('[\n  {"prompt": "A"},\n  {"prompt": "B"\n]')
    assert exc.line == 4
    assert exc.message.startswith("JSON could not be read")


def test_it_reports_a_json_item_without_a_prompt_with_its_number_and_line() -> None:
    exc = error('[\n  {"prompt": "A"},\n  "B",\n\n  {"title": "C"}\n]')
    assert str(exc) == 'Line 5: Item 3: the scene has no "prompt"'


def test_it_reports_a_json_item_that_is_not_an_object_or_a_string() -> None:
    exc = error('[{"prompt": "A"}, [1, 2],\n 42]')
    assert (exc.line, exc.message) == (1, "Item 2: expected an object or a string, found a list")
    exc = error('[{"prompt": "A"},\n 42]')
    assert (exc.line, exc.message) == (2, "Item 2: expected an object or a string, found a number")


def test_it_reports_a_json_prompt_that_is_not_text() -> None:
    exc = error('[\n{"prompt": 5}]')
    assert (exc.line, exc.message) == (2, 'Item 1: "prompt" must be text, found a number')


def test_it_reports_json_that_is_not_a_list() -> None:
    assert error('{"prompt": "A"}', fmt="json").message == "A JSON story must be a list of scenes"


def test_it_reads_json_with_crlf_line_endings_and_a_bom() -> None:
    assert prompts('\ufeff[\r\n  "A market",\r\n  "A river"\r\n]') == ["A market", "A river"]


# Detection and limits


@pytest.mark.parametrize(
    ("text", "filename", "expected"),
    [
        ("1. A market", "story.csv", "csv"),
        ("prompt\nA", "STORY.JSON", "json"),
        ("prompt,title\nA,B", "story.txt", "text"),
        ("[1, 2]", "notes.md", "text"),
        ("1. A market\n2. A river", "story.md", "numbered"),
        ('[{"prompt": "A"}]', "", "json"),
        ("title,prompt\nA,B", "", "csv"),
        ("1) A market", "", "numbered"),
        ("Scene 1 - A market", "", "numbered"),
        ("SCENE 1: A market", "", "numbered"),
        ("Once upon a time.", "", "text"),
    ],
)
def test_it_detects_the_format_from_extension_then_content(text: str, filename: str, expected: str) -> None:
    assert detect_format(text, filename=filename) == expected


def test_an_explicit_format_overrides_detection() -> None:
    assert prompts("1. A market\n2. A river", fmt="text") == ["1. A market 2. A river"]


def test_it_rejects_an_unknown_format() -> None:
    assert "unknown story format" in error("A", fmt="yaml").message.casefold()


@pytest.mark.parametrize("text", ["", "   \n\n\t\n", "\ufeff", "[]"])
def test_it_reports_a_story_without_scenes(text: str) -> None:
    exc = error(text)
    assert (exc.line, str(exc)) == (None, "The story has no scenes")


def test_it_refuses_more_scenes_than_the_limit() -> None:
    assert len(parse_story("\n\n".join(["A scene."] * MAX_SCENES))) == MAX_SCENES
    exc = error("\n\n".join(["A scene."] * (MAX_SCENES + 1)))
    assert str(MAX_SCENES) in exc.message


def test_story_format_errors_are_value_errors() -> None:
    assert isinstance(error(""), ValueError)


# Input the database would refuse (PostgreSQL) or silently keep (SQLite): refused here the same way


def test_it_reports_json_nested_too_deeply() -> None:
    exc = error("[" * 100_000 + "]" * 100_000, fmt="json")
    assert "nested too deeply" in exc.message


def test_it_reports_an_unpaired_surrogate_in_json() -> None:
    exc = error('[{"prompt": "ok"}, {"prompt": "bad \\ud800 text"}]')
    assert "Scene 2" in exc.message and "not valid text" in exc.message


@pytest.mark.parametrize(
    "text",
    [
        "Before.\n\nA NUL \x00 here.",
        '[{"prompt": "x", "title": "a\\u0000b"}]',
        "prompt,characters\nx,Ann\x00\n",
    ],
)
def test_it_reports_a_nul_character(text: str) -> None:
    exc = error(text)
    assert "NUL" in exc.message


def test_it_reports_a_title_longer_than_the_column() -> None:
    parse_story(json.dumps([{"prompt": "x", "title": "t" * TITLE_MAX_LENGTH}]))
    exc = error(json.dumps([{"prompt": "x"}, {"prompt": "x", "title": "t" * (TITLE_MAX_LENGTH + 1)}]))
    assert "Scene 2" in exc.message and f"{TITLE_MAX_LENGTH} characters" in exc.message


def test_it_reports_a_character_name_longer_than_the_column() -> None:
    parse_story(json.dumps([{"prompt": "x", "characters": ["n" * NAME_MAX_LENGTH]}]))
    exc = error(json.dumps([{"prompt": "x", "characters": ["n" * (NAME_MAX_LENGTH + 1)]}]))
    assert "Scene 1" in exc.message and f"{NAME_MAX_LENGTH} characters" in exc.message


def test_the_length_limits_are_the_columns() -> None:
    from projects.models import Character, Scene

    assert Scene._meta.get_field("title").max_length == TITLE_MAX_LENGTH
    assert Character._meta.get_field("name").max_length == NAME_MAX_LENGTH
