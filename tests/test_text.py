"""Tests of tpd_qa.text: line offsets, sentence spans and list items."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tpd_qa.text import (
    estimate_tokens,
    is_markdown_list_item,
    line_starts,
    list_marker,
    sentence_spans,
)


def sentences(text: str, **options: bool) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text, **options)]


# ---------------------------------------------------------------------------------------
# line_starts


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", [0]), ("one", [0]), ("a\nbc\n", [0, 2, 5]), ("\n\n", [0, 1, 2]), ("ab\ncd", [0, 3])],
)
def test_line_starts(text: str, expected: list[int]) -> None:
    assert line_starts(text) == expected


@given(st.text(alphabet="ab \n\r", max_size=60))
def test_line_starts_match_split(text: str) -> None:
    starts = line_starts(text)
    lines = text.split("\n")
    assert len(starts) == len(lines)
    for start, line in zip(starts, lines, strict=True):
        assert text[start : start + len(line)] == line
        assert start == 0 or text[start - 1] == "\n"


# ---------------------------------------------------------------------------------------
# sentence_spans


def test_sentences_end_at_punctuation_and_whitespace() -> None:
    text = "  The deal was signed.  Both sides agreed!\nWill it last?  "
    assert sentences(text) == ["The deal was signed.", "Both sides agreed!", "Will it last?"]


def test_japanese_sentences_need_no_space() -> None:
    text = "日米は協力する。量子技術も進める！本当ですか？"
    assert sentences(text) == ["日米は協力する。", "量子技術も進める！", "本当ですか？"]
    assert sentences("「はい。」と言った。") == ["「はい。」と言った。"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "大臣は「拘束力はない。」と述べた。次へ。",
            ["大臣は「拘束力はない。」と述べた。", "次へ。"],
        ),
        ("「外『内。』外。」後。続き。", ["「外『内。』外。」後。", "続き。"]),
        ("（注：別紙。）本文。終わり！", ["（注：別紙。）本文。", "終わり！"]),
        ("予算は「未定。", ["予算は「未定。"]),  # an opening bracket left open
        ("閉じ」ただけ。次。", ["閉じ」ただけ。", "次。"]),  # a closer with no opener
        ("「はい。」\n「いいえ。」", ["「はい。」\n「いいえ。」"]),
        ("The (draft. Really.) text. End.", ["The (draft.", "Really.)", "text.", "End."]),
    ],
)
def test_japanese_sentence_ends_inside_brackets_do_not_end_the_sentence(
    text: str, expected: list[str]
) -> None:
    assert sentences(text) == expected


def test_line_breaks_end_quoted_japanese_sentences_when_asked() -> None:
    assert sentences("「はい。」\n「いいえ。」", lines=True) == ["「はい。」", "「いいえ。」"]


def test_abbreviations_and_list_numbers_join_the_next_sentence() -> None:
    assert sentences("Dr. Smith visited Tokyo. He met the minister.") == [
        "Dr. Smith visited Tokyo.",
        "He met the minister.",
    ]
    assert sentences("No. 7 is next. 7. The seventh item.") == [
        "No. 7 is next.",
        "7. The seventh item.",
    ]
    assert sentences("Version 3.5 ships today.") == ["Version 3.5 ships today."]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "The envoy met Dr. Swann in Tokyo. They spoke.",
            ["The envoy met Dr. Swann in Tokyo.", "They spoke."],
        ),
        (
            "It was signed by John F. Kennedy in 1961. Then it lapsed.",
            ["It was signed by John F. Kennedy in 1961.", "Then it lapsed."],
        ),
        (
            "See Annex No. 5 for the list. It is short.",
            ["See Annex No. 5 for the list.", "It is short."],
        ),
        ("The chart in Fig.\n3 shows it. Done.", ["The chart in Fig.\n3 shows it.", "Done."]),
        # "U.S." and a plain word before a capital still end the sentence
        ("It was made in the U.S. Japan agreed.", ["It was made in the U.S.", "Japan agreed."]),
        ("He said no. Then he left.", ["He said no.", "Then he left."]),
        # a title before a lower-case word or a blank line ends it
        ("Ask the Dr. then leave.", ["Ask the Dr.", "then leave."]),
        ("Ask the Dr.\n\nThe end.", ["Ask the Dr.", "The end."]),
    ],
)
def test_titles_and_initials_before_a_name_end_no_sentence(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_line_breaks_end_sentences_only_when_asked() -> None:
    text = "- first item\n- second item\nA wrapped\nsentence."
    assert sentences(text) == [text]
    assert sentences(text, lines=True) == [
        "- first item",
        "- second item",
        "A wrapped",
        "sentence.",
    ]


def test_sentence_spans_inside_a_window() -> None:
    text = "Skip this. Keep one. Keep two. Skip too."
    start = text.index("Keep")
    end = text.index(" Skip too")
    assert [text[a:b] for a, b in sentence_spans(text, start, end)] == ["Keep one.", "Keep two."]


_SENTENCE_TEXT = st.text(alphabet="ab .!?。「」『）\n7DrFNo", max_size=80)


@given(_SENTENCE_TEXT, st.integers(0, 80), st.integers(0, 80), st.booleans())
def test_sentence_spans_are_ordered_disjoint_inside_and_trimmed(
    text: str, a: int, b: int, lines: bool
) -> None:
    start, end = sorted((min(a, len(text)), min(b, len(text))))
    spans = sentence_spans(text, start, end, lines=lines)
    previous = start
    for begin, stop in spans:
        assert previous <= begin < stop <= end
        piece = text[begin:stop]
        assert piece == piece.strip()
        previous = stop
    # Every non-space character of the window is in some span.
    covered = {i for begin, stop in spans for i in range(begin, stop)}
    assert all(text[i].isspace() or i in covered for i in range(start, end))


# ---------------------------------------------------------------------------------------
# list items


@pytest.mark.parametrize(
    ("line", "body", "label"),
    [
        ("3. Energy security", "Energy security", "3"),
        ("  12) Quantum", "Quantum", "12"),
        ("(b) Space", "Space", "b"),
        ("(10) Ten", "Ten", "10"),
        ("- bullet", "bullet", None),
        ("\t• typographic bullet", "typographic bullet", None),
    ],
)
def test_list_marker(line: str, body: str, label: str | None) -> None:
    marker = list_marker(line)
    assert marker is not None
    assert line[marker.body :] == body
    assert marker.label == label


@pytest.mark.parametrize("line", ["3.14 is pi", "-5 degrees", "1.", "Plain sentence.", "(ab) no"])
def test_not_a_list_marker(line: str) -> None:
    assert list_marker(line) is None


def test_list_marker_stays_inside_the_line() -> None:
    text = "intro\n2. second\n"
    start = text.index("2.")
    marker = list_marker(text, start, text.index("\n", start))
    assert marker is not None and marker.label == "2" and text[marker.body] == "s"
    assert list_marker("-\nnext", 0, 1) is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("- item", True),
        ("+ item", True),
        ("1. item", True),
        ("123456789) item", True),
        ("1.", True),  # an empty item is still an item in Markdown
        ("   * three spaces", True),
        ("    - four spaces is code", False),
        ("(a) Scope", False),  # a plain-text label, not Markdown list syntax
        ("• bullet", False),
        ("-no space", False),
    ],
)
def test_markdown_list_items(line: str, expected: bool) -> None:
    assert is_markdown_list_item(line) is expected


def test_estimate_tokens() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("one two three four five six seven eight nine ten") == 13


def test_estimate_tokens_counts_each_cjk_character() -> None:
    assert estimate_tokens("日米の技術協力。") == 8
    assert estimate_tokens("JT-60SAを活用する") == 7  # 1.3 for the word, 5 for the kana and kanji
    assert estimate_tokens("（ＡＩ）と量子") == 7  # full-width forms count too
    assert estimate_tokens("\u3000日本\u3000") == 2  # the ideographic space is a space
    assert estimate_tokens("中文也一样") == 5


@given(st.text(alphabet="abc .,!?\n\t-'é0"))
def test_estimate_tokens_of_text_without_cjk_counts_words(text: str) -> None:
    assert estimate_tokens(text) == (len(text.split()) * 13 + 9) // 10
