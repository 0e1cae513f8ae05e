"""Page furniture: the running headers, running footers and page numbers of a PDF.

Printed pages repeat a title or chapter name at the top and a page number at the bottom.
Left in the text, they land in the middle of passages ("... information found in a / 2 /
Shared MIME-info Database / directory is added ..."), cut sentences that run on to the
next page in two and add the same words to every passage. A line is furniture when it is
one of the first or last :data:`EDGE_LINES` lines of a page and

* it carries the page's printed number: a lone number ("7", "Page 7", "7 of 30",
  "- 7 -") or a short running title that starts or ends with it ("Chapter 3: Utilities
  7"), where the printed numbers follow the page order with one fixed offset on at least
  :data:`MIN_PAGES` pages; or
* it repeats word for word at the same edge of at least :data:`MIN_PAGES` pages and of
  at least a third of the pages (a running title without a number). On the first page
  such a header is kept: there it is the document's title.

Furniture is read from the edge inwards and stops at the first line that is not (so a
heading under a page number stays), and each edge gives up at most one numbered line.

Whole lines are dropped from the text and from the PDFium character map together, so a
highlight still finds the exact characters of an indexed span (:func:`match` tells which
lines a page lost when the page is read again).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Final

from tpd_qa.ingest.parsed import PageText

__all__ = ["EDGE_LINES", "MIN_PAGES", "match", "strip_furniture"]

#: How many lines at the top and at the bottom of a page may be furniture.
EDGE_LINES: Final = 2
#: A numbering or a repeated line must be seen on at least this many pages.
MIN_PAGES: Final = 3
#: Longer lines are never furniture.
_MAX_CHARS: Final = 100

_LONE_NUMBER = re.compile(
    r"(?:page\s+)?[-\u2013\u2014]?\s*(\d{1,4})\s*[-\u2013\u2014]?(?:\s*(?:of|/)\s*\d{1,4})?", re.I
)
_LEADING_NUMBER = re.compile(r"(\d{1,4})\s+\D.*")
_TRAILING_NUMBER = re.compile(r".*\D\s+(\d{1,4})")
_LETTER = re.compile(r"[^\W\d_]")


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _edges(count: int) -> tuple[list[int], list[int]]:
    """Line positions of the top and bottom edges of a page of ``count`` lines, each
    from the edge inwards."""
    top = list(range(min(EDGE_LINES, count)))
    bottom = list(range(count - 1, max(count - 1 - EDGE_LINES, len(top) - 1), -1))
    return top, bottom


def _printed_number(line: str) -> int | None:
    """The page number a line shows, if it shows one."""
    line = line.strip()
    if len(line) > _MAX_CHARS:
        return None
    for pattern in (_LONE_NUMBER, _LEADING_NUMBER, _TRAILING_NUMBER):
        found = pattern.fullmatch(line)
        if found:
            return int(found.group(1))
    return None


def _key(line: str) -> str | None:
    """A line as a running title repeats it (spacing aside), or None for too short or
    too long a line."""
    words = " ".join(line.split())
    if len(words) > _MAX_CHARS or len(_LETTER.findall(words)) < 3:
        return None
    return words


def _offset(pages: Sequence[list[str]]) -> int | None:
    """The ``page index - printed number`` that most pages agree on, if enough do."""
    votes: Counter[int] = Counter()
    for index, lines in enumerate(pages):
        offsets = set()
        for edge in _edges(len(lines)):
            for position in edge:
                number = _printed_number(lines[position])
                if number is not None:
                    offsets.add(index - number)
        votes.update(offsets)
    if not votes:
        return None
    offset, seen = votes.most_common(1)[0]
    return offset if seen >= MIN_PAGES else None


def _running_titles(pages: Sequence[list[str]]) -> tuple[set[str], set[str]]:
    """Keys of the lines that repeat at the top, and at the bottom, of enough pages."""
    counts: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
    for lines in pages:
        for counter, edge in zip(counts, _edges(len(lines)), strict=True):
            counter.update({k for k in (_key(lines[p]) for p in edge) if k is not None})
    needed = max(MIN_PAGES, -(-len(pages) // 3))
    top, bottom = ({k for k, n in c.items() if n >= needed} for c in counts)
    return top, bottom


def _furniture(
    lines: list[str], index: int, offset: int | None, titles: tuple[set[str], set[str]]
) -> tuple[int, int]:
    """How many lines at the top and at the bottom of page ``index`` are furniture."""
    counts = []
    for side, edge in enumerate(_edges(len(lines))):
        count = 0
        numbered = False
        for position in edge:
            line = lines[position]
            if not numbered and offset is not None and _printed_number(line) == index - offset:
                numbered = True
            elif not (_key(line) in titles[side] and (index, side) != (0, 0)):
                break
            count += 1
        counts.append(count)
    return counts[0], counts[1]


def strip_furniture(pages: Sequence[PageText]) -> list[PageText]:
    """``pages`` without their running headers, running footers and page numbers."""
    split = [_lines(page.text) for page in pages]
    offset = _offset(split)
    titles = _running_titles(split)
    return [
        _trimmed(page, *_furniture(lines, index, offset, titles))
        for index, (page, lines) in enumerate(zip(pages, split, strict=True))
    ]


def _trimmed(page: PageText, top: int, bottom: int) -> PageText:
    """``page`` without its first ``top`` and last ``bottom`` lines, and without the
    blank lines and trailing white space that then start or end it."""
    if not top and not bottom:
        return page
    breaks = [i for i, c in enumerate(page.text) if c == "\n"]
    lines = len(breaks) + 1
    if top + bottom >= lines:
        return PageText("", ())
    start = breaks[top - 1] + 1 if top else 0
    end = breaks[lines - bottom - 1] if bottom else len(page.text)
    while start < end and page.text[start] == "\n":
        start += 1
    while end > start and page.text[end - 1].isspace():
        end -= 1
    return PageText(page.text[start:end], page.chars[start:end])


def match(extracted: PageText, indexed: str) -> PageText | None:
    """``extracted`` as it was indexed: the page read again, less the edge lines that
    :func:`strip_furniture` dropped when it was indexed (None if no choice fits). Where
    two choices leave the same text (a page of repeated lines), the one that drops more
    lines at the top wins, as in :func:`strip_furniture`."""
    lines = len(_lines(extracted.text))
    top_most, bottom_most = (len(edge) for edge in _edges(lines))
    for top in range(top_most, -1, -1):
        for bottom in range(bottom_most, -1, -1):
            candidate = _trimmed(extracted, top, bottom)
            if candidate.text == indexed:
                return candidate
    return None
