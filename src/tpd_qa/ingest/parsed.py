"""What every format parser returns, and the text helpers all of them share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from tpd_qa.errors import IngestError
from tpd_qa.records import Heading

__all__ = [
    "MAX_TEXT_CHARS",
    "PageText",
    "ParseFunction",
    "Parsed",
    "TextBuilder",
    "check_length",
    "collapse",
    "normalize",
    "short",
]

#: Longest document text kept (characters); longer documents are refused.
MAX_TEXT_CHARS: int = 5_000_000


@dataclass(frozen=True, slots=True)
class PageText:
    """The text of one page and, for each of its characters, the PDFium character index
    it came from (``chars[i]`` for ``text[i]``; ``len(chars) == len(text)``; -1 for a
    line break inserted after a line-end hyphen)."""

    text: str
    chars: tuple[int, ...]


class Parsed(NamedTuple):
    """A parser's result, before it becomes a :class:`~tpd_qa.records.Document`."""

    title: str
    text: str
    headings: list[Heading]
    page_starts: tuple[int, ...] = ()
    #: Per page: mean OCR confidence of a page read by OCR, None for a text layer
    #: (empty when no page was read by OCR).
    page_ocr: tuple[float | None, ...] = ()
    #: Remarks for the build report (unreadable scanned pages, OCR off...).
    notes: tuple[str, ...] = ()


#: ``parse(data, source)`` of a format module; raises :class:`IngestError` for bad input.
ParseFunction = Callable[[bytes, str], Parsed]


def check_length(n: int) -> None:
    """Refuse a text of ``n`` characters when it is over :data:`MAX_TEXT_CHARS`."""
    if n > MAX_TEXT_CHARS:
        raise IngestError(f"text too long ({n:,} characters > {MAX_TEXT_CHARS:,} limit)")


def normalize(text: str) -> str:
    """Newlines to ``\\n`` and NUL characters removed."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def collapse(text: str) -> str:
    """Every run of whitespace as one space, none at the ends."""
    return " ".join(text.split())


def short(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, at most ``limit`` characters."""
    message = str(exc).strip().splitlines()
    text = message[0].strip() if message else ""
    if not text:
        text = type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TextBuilder:
    """Joins paragraphs with blank lines and records heading spans (DOCX, HTML)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.headings: list[Heading] = []

    def add(self, paragraph: str, *, heading_level: int | None = None, prefix: str = "") -> None:
        if not paragraph.strip():
            return
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        start = self.length + len(prefix)
        self.parts.append(prefix + paragraph)
        self.length += len(prefix) + len(paragraph)
        check_length(self.length)
        if heading_level is not None:
            self.headings.append(Heading(start, start + len(paragraph), heading_level, paragraph))

    def text(self) -> str:
        return "".join(self.parts)
