"""Headings and titles found in plain lines of text (plain text and PDF), and the title
made from a file name (the last resort of every format)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from tpd_qa.ingest.parsed import collapse
from tpd_qa.records import Heading
from tpd_qa.text import line_starts

__all__ = ["first_line_title", "line_headings", "title_from_name"]

_NUMBERED = re.compile(r"(\d{1,3}(?:\.\d{1,3}){0,5})\.?\s+(\S.*)")
_NUMBERED_LOOSE = re.compile(r"(\d{1,3}(?:\.\d{1,3}){0,5})\.?\s+\S")
_TOC_LEADER = re.compile(r"\.{3,}|…|\s{2,}\d+$")
_NOT_FINAL = (".", ",", ";", ":", "。", "、")
#: A line ending so goes on (code, a formula, a list): neither it nor the next is a heading.
_CONTINUED = ("=", "{", "(", "[", ",", "\\", "+", "|")
_NO_HEADING_END = _NOT_FINAL + _CONTINUED


def _heading_level(line: str) -> int | None:
    """Level of a stripped line that looks like a heading, else None."""
    if len(line) >= 80 or line.endswith(_NO_HEADING_END) or _TOC_LEADER.search(line):
        return None
    match = _NUMBERED.fullmatch(line)
    if match:
        rest = match.group(2)
        first = rest[0]
        if first.isalpha() and not first.islower() and sum(c.isalpha() for c in rest) >= 2:
            return match.group(1).count(".") + 1
        return None
    letters = [c for c in line if c.isalpha()]
    cased = [c for c in letters if c.isupper() or c.islower()]
    non_space = sum(not c.isspace() for c in line)
    if (
        len(cased) >= 4
        and all(c.isupper() for c in cased)
        and len(cased) >= 0.8 * len(letters)
        and len(cased) >= 0.5 * non_space
    ):
        return 1
    return None


def _numbered_depth(line: str) -> int | None:
    match = _NUMBERED_LOOSE.match(line)
    return match.group(1).count(".") + 1 if match else None


def line_headings(text: str) -> list[Heading]:
    """Numbered section headings and short ALL-CAPS lines, each on a line of its own
    (not straight after a line that goes on, such as ``DEFINITIONS ::=`` before an
    ASN.1 ``BEGIN``)."""
    lines = text.split("\n")
    stripped = [line.strip() for line in lines]
    headings: list[Heading] = []
    for i, start in enumerate(line_starts(text)):
        title = stripped[i]
        if not title:
            continue
        level = _heading_level(title)
        if level is None:
            continue
        before = stripped[i - 1] if i else ""
        if before.endswith(_CONTINUED):
            continue
        depth = _numbered_depth(title)
        if depth is not None:
            # A run of adjacent numbered lines of the same depth is a list or a table of
            # contents, not a series of headings.
            neighbours = [stripped[j] for j in (i - 1, i + 1) if 0 <= j < len(lines)]
            if any(n and _numbered_depth(n) == depth for n in neighbours):
                continue
            # A numbered paragraph wrapped onto a lower-case line goes on: not a heading.
            following = stripped[i + 1] if i + 1 < len(lines) else ""
            if following[:1].islower():
                continue
        line = lines[i]
        offset = start + len(line) - len(line.lstrip())
        headings.append(Heading(offset, offset + len(title), level, title))
    return headings


def first_line_title(text: str) -> str | None:
    """The first non-empty line, when it is short and not a sentence."""
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        if len(line) <= 120 and not line.endswith((".", "。")) and any(c.isalnum() for c in line):
            return collapse(line)
        return None
    return None


_ACRONYMS = frozenset({"us", "usa", "uk", "eu", "un", "ai", "ict", "nasa", "nato", "faq"})
_MINOR_WORDS = frozenset({"a", "an", "and", "at", "by", "for", "in", "of", "on", "or", "the", "to"})


def title_from_name(source: str) -> str:
    """A readable title from a file name: ``us-japan-deal.txt`` -> ``US Japan Deal``."""
    stem = PurePosixPath(source).stem
    words = collapse(re.sub(r"[-_]+", " ", stem)).split(" ")
    if any(ch.isupper() for ch in stem):
        titled = words
    else:
        titled = [
            w.upper() if w in _ACRONYMS else w if i and w in _MINOR_WORDS else w[:1].upper() + w[1:]
            for i, w in enumerate(words)
        ]
    return " ".join(titled) or source
