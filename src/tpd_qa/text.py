"""Text rules shared by ingestion, chunking and highlighting: lines, sentences, list items,
tokens.

Each rule lives here once, so a passage is cut at the same sentence boundary that the
web UI highlights and the token estimate is the same everywhere.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ABBREVIATIONS",
    "CJK_CHARACTER",
    "ListMarker",
    "answer_spans",
    "answering",
    "estimate_tokens",
    "heading_lines",
    "heading_marks",
    "is_markdown_list_item",
    "line_starts",
    "list_marker",
    "sentence_spans",
    "text_key",
]

#: One character of a script written without spaces between words (kana, CJK ideographs
#: with extensions and compatibility forms, Hangul): a regular-expression class, the one
#: definition keyword analysis and script detection build on.
CJK_CHARACTER: Final = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"

# Titles that come before a name ("Dr. Swann") and reference words that come before a
# number ("No. 5", "Fig. 3"): their full stop ends no sentence when a name or a number
# follows (a single capital, an initial as in "John F. Kennedy", counts as a title).
_TITLES: Final = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "mt", "ft", "rev", "gen", "col", "lt", "sgt"}
    | {"capt", "gov", "sen", "rep"}
)
_REFERENCE_WORDS: Final = frozenset({"no", "nos", "fig", "figs", "vol", "p", "pp"})
#: Words that end with a full stop without ending a sentence when they stand alone. Dotted
#: ones that often close a sentence ("U.S.", "etc.") end it when more words precede them.
ABBREVIATIONS: Final = _TITLES | _REFERENCE_WORDS | {"vs", "e.g", "i.e", "etc", "u.s"}
# A sentence ends at . ! ? followed by whitespace (Latin scripts), right after 。！？
# (Japanese and Chinese need no space), closing quotes and brackets included. A 。！？
# inside a pair of Japanese brackets 「」『』（） ends no sentence: 「…。」と述べた。 is one.
_SENTENCE_END = re.compile(
    r"[.!?]+[\"'”’)\]]*(?=\s)|(?P<cjk>[。！？]+)[」』）\"'”’)\]]*|\n[ \t]*(?=\n)"
)
_SENTENCE_OR_LINE_END = re.compile(_SENTENCE_END.pattern + r"|\n")
# The last word before a full stop, not part of a dotted abbreviation such as "U.S.".
_LAST_WORD = re.compile(r"(?<![\w.])(\w+)\.$")
_NEXT = re.compile(r"[ \t]*\n?[ \t]*(\S)")
_BRACKET_PAIRS: Final = {"」": "「", "』": "『", "）": "（"}
_BRACKET = re.compile("[「」『』（）]")
_WORD = re.compile(r"\w+(?:[.'’]\w+)*")
# CJK punctuation (not the ideographic space), kana, ideographs (extensions and compatibility
# forms too), full-width forms.
_CJK = re.compile(
    "[\u3001-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f]"
)

# List items come in two dialects, and they genuinely differ:
# * in the text of any document (PDF, DOCX, HTML, plain text; what chunking reads), an item
#   is a line starting, at any indentation, with a number ``3.``/``3)``, a label ``(b)``/
#   ``(12)`` or a bullet (``-``, ``*`` and the typographic ones), then text;
# * in Markdown source, CommonMark decides: at most three spaces of indentation, only
#   ``-``/``+``/``*`` or up to nine digits with ``.``/``)``, and an empty item counts. A
#   line ``(a) Scope`` underlined with ``---`` is a heading there, not a list item.
_LIST_ITEM = re.compile(r"[ \t]*(?:(\d{1,3})[.)]|\(([a-z]|\d{1,3})\)|[-*•▪◦‣])[ \t]+(?=\S)")
_MARKDOWN_LIST_ITEM = re.compile(r" {0,3}(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")


@dataclass(frozen=True, slots=True)
class ListMarker:
    """The marker that opens a list item: where its text begins and its number or letter."""

    #: Offset of the item's text, after the marker and the space behind it.
    body: int
    #: ``"3"`` for ``3.``, ``"b"`` for ``(b)``; ``None`` for a bullet.
    label: str | None


def estimate_tokens(text: str) -> int:
    """A cheap stand-in for a tokenizer: roughly 1.3 word pieces per whitespace-separated
    word, and one per Chinese or Japanese character (kana, kanji, their punctuation and
    full-width forms), as BERT-style tokenizers split those scripts, written without
    spaces, about character by character."""
    cjk = len(_CJK.findall(text))
    if cjk:
        text = _CJK.sub(" ", text)
    return (len(text.split()) * 13 + cjk * 10 + 9) // 10


def line_starts(text: str) -> list[int]:
    """The offset at which each ``\\n``-separated line of ``text`` starts."""
    starts = [0]
    position = text.find("\n")
    while position != -1:
        starts.append(position + 1)
        position = text.find("\n", position + 1)
    return starts


def list_marker(text: str, start: int = 0, end: int | None = None) -> ListMarker | None:
    """The list-item marker at the start of the line ``text[start:end]``, if there is one."""
    match = _LIST_ITEM.match(text, start, len(text) if end is None else end)
    if match is None:
        return None
    return ListMarker(match.end(), match.group(1) or match.group(2))


def is_markdown_list_item(line: str) -> bool:
    """Does the Markdown source ``line`` open a list item (CommonMark syntax)?"""
    return _MARKDOWN_LIST_ITEM.match(line) is not None


def sentence_spans(
    text: str, start: int = 0, end: int | None = None, *, lines: bool = False
) -> list[tuple[int, int]]:
    """Spans of the sentences in ``text[start:end]``, trimmed of whitespace.

    A blank line (a paragraph break, e.g. after a heading) always ends a sentence. With
    ``lines`` every line break also ends one (for display, where lines are list items);
    without, wrapped lines of a paragraph stay one sentence. A fragment
    that is only a list number (``7.``) or an abbreviation (``Dr.``) is joined to the
    sentence after it. A 。！？ inside matched Japanese brackets 「」『』（） is part of the
    sentence around the brackets.
    """
    end = len(text) if end is None else end
    pattern = _SENTENCE_OR_LINE_END if lines else _SENTENCE_END
    quoted = _bracketed(text, start, end)
    raw: list[tuple[int, int]] = []
    position = start
    for match in pattern.finditer(text, start, end):
        if quoted and match["cjk"] and _inside(quoted, match.start()):
            continue
        raw.append((position, match.end()))
        position = match.end()
    raw.append((position, end))
    spans: list[tuple[int, int]] = []
    pending: int | None = None
    last_stop = start
    for begin, stop in raw:
        while begin < stop and text[begin].isspace():
            begin += 1
        while stop > begin and text[stop - 1].isspace():
            stop -= 1
        if begin >= stop:
            continue
        last_stop = stop
        if pending is not None:
            begin, pending = pending, None
        # tiny: no word, or one word that is a number or an abbreviation (two searches,
        # not a list of every word: this runs for each sentence of each passage scored)
        word = _WORD.search(text, begin, stop)
        tiny = word is None or (
            _WORD.search(text, word.end(), stop) is None
            and (word.group().isdigit() or word.group().lower() in ABBREVIATIONS)
        )
        if (tiny and text[stop : stop + 1] != "\n") or _joins_next(text, begin, stop, end):
            pending = begin
            continue
        spans.append((begin, stop))
    if pending is not None:
        spans.append((pending, last_stop))
    return spans


def _joins_next(text: str, begin: int, stop: int, end: int) -> bool:
    """Does the sentence ``text[begin:stop]`` end in a title, an initial or a reference
    word that the next word (on the same or the next line, before ``end``) continues?"""
    if text[stop - 1] != ".":
        return False
    following = _NEXT.match(text, stop, end)
    if following is None:
        return False
    last = _LAST_WORD.search(text, max(begin, stop - 8), stop)
    if last is None:
        return False
    word, first = last.group(1), following.group(1)
    if first.isupper():
        return word.lower() in _TITLES or (len(word) == 1 and word.isupper())
    return first.isdigit() and word.lower() in _REFERENCE_WORDS


def _bracketed(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Insides of the matched Japanese bracket pairs in ``text[start:end]``, outermost
    only, in text order; a bracket without its partner is ignored."""
    if not _BRACKET.search(text, start, end):
        return []
    opened: list[tuple[str, int]] = []
    pairs: list[tuple[int, int]] = []
    for match in _BRACKET.finditer(text, start, end):
        opener = _BRACKET_PAIRS.get(match.group())
        if opener is None:
            opened.append((match.group(), match.end()))
            continue
        # Close the nearest open bracket of this kind; any opened after it stay unclosed.
        for depth in range(len(opened) - 1, -1, -1):
            if opened[depth][0] == opener:
                pairs.append((opened[depth][1], match.start()))
                del opened[depth:]
                break
    outermost: list[tuple[int, int]] = []
    for inside in sorted(pairs):
        if not outermost or inside[0] >= outermost[-1][1]:
            outermost.append(inside)
    return outermost


def _inside(insides: list[tuple[int, int]], position: int) -> bool:
    """Whether ``position`` lies inside one of the (sorted, disjoint) ``insides``."""
    index = bisect.bisect_right(insides, position, key=lambda inside: inside[0]) - 1
    return index >= 0 and position < insides[index][1]


def answer_spans(text: str) -> list[tuple[int, int]]:
    """The sentences of a passage that may answer a question (:func:`answering`).

    The second stage marks one of these as a passage's answer and (with sentence
    vectors) embeds each of them: one rule for both. Never empty.
    """
    spans = sentence_spans(text) or [(0, len(text))]
    return [span for span, ok in zip(spans, answering(text, spans), strict=True) if ok]


def answering(text: str, spans: list[tuple[int, int]]) -> list[bool]:
    """Which of ``text``'s sentence ``spans`` may answer: all but Markdown heading lines
    (a heading names a section, it answers nothing), or all when nothing else is left."""
    ok = [not text.startswith("#", start) for start, _end in spans]
    return ok if any(ok) else [True] * len(spans)


#: A Markdown heading line as a passage shows it: the rule of :func:`answering` (a line
#: starting with "#"): the marker with the spaces after it, then the heading's words.
_HEADING_LINE = re.compile(r"^(#{1,6}[ \t]+)(.*)$", re.MULTILINE)


def heading_lines(text: str) -> list[tuple[int, int, int]]:
    """Markdown heading lines of ``text`` as (marker start, words start, line end): a
    reader sees the heading's words, the marker ("## ") is for the format."""
    return [(m.start(1), m.start(2), m.end(2)) for m in _HEADING_LINE.finditer(text)]


def heading_marks(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds Markdown heading markers ("## " at a line start), as (start,
    end) spans (:func:`heading_lines`)."""
    return [(start, words) for start, words, _end in heading_lines(text)]


def text_key(text: str) -> bytes:
    """A short digest of a text: how stored vectors (of passages and of sentences) are
    found again for reuse instead of embedding the same text twice."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
