"""Typed value objects shared by every component: documents, chunks, passages, reports."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Heading",
    "Document",
    "Chunk",
    "Passage",
    "DocumentInfo",
    "FileOutcome",
    "BuildReport",
    "OCR_LABEL",
    "format_citation",
]


@dataclass(frozen=True, slots=True)
class Heading:
    """A heading of a document: ``document.text[start:end]`` is its text; level 1 is the top."""

    start: int
    end: int
    level: int
    title: str


@dataclass(frozen=True, slots=True)
class Document:
    """The plain text of one source file plus the structure found in it.

    ``page_starts[i]`` is the offset in ``text`` where page ``i + 1`` begins
    (PDFs and images only; empty for formats without pages). ``page_ocr[i]`` is the mean
    OCR word confidence (0-100) of page ``i + 1`` when that page was read by OCR, None when
    it had a text layer (empty: no page was read by OCR). ``notes`` are remarks on reading
    the file for the build report (e.g. an unreadable scanned page); they are not stored.
    """

    source: str
    title: str
    text: str
    kind: str
    sha256: str
    page_starts: tuple[int, ...] = ()
    headings: tuple[Heading, ...] = ()
    page_ocr: tuple[float | None, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    def to_record(self) -> dict[str, Any]:
        """The document as plain JSON values (``notes`` left out): what an index stores."""
        return {
            "source": self.source,
            "title": self.title,
            "kind": self.kind,
            "sha256": self.sha256,
            "text": self.text,
            "page_starts": list(self.page_starts),
            "headings": [[h.start, h.end, h.level, h.title] for h in self.headings],
            "page_ocr": list(self.page_ocr),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Document:
        """The document ``to_record`` gave (``page_ocr`` may be absent: older indexes)."""
        return cls(
            source=record["source"],
            title=record["title"],
            text=record["text"],
            kind=record["kind"],
            sha256=record["sha256"],
            page_starts=tuple(record["page_starts"]),
            headings=tuple(Heading(*h) for h in record["headings"]),
            page_ocr=tuple(None if c is None else float(c) for c in record.get("page_ocr", ())),
        )

    def ocr_confidence(self, start: int, end: int) -> float | None:
        """Lowest OCR confidence of the pages ``text[start:end]`` spans; None if no page
        it spans was read by OCR."""
        if not self.page_ocr:
            return None
        first, last = self.page_at(start) or 1, self.page_at(max(start, end - 1)) or 1
        values = [c for c in self.page_ocr[first - 1 : last] if c is not None]
        return min(values) if values else None

    def section_at(self, offset: int) -> str | None:
        """The heading path (``2 Scope › 2.2 Quantum``) in force at ``offset``."""
        path: list[tuple[int, str]] = []
        for heading in self.headings:
            if heading.start > offset:
                break
            while path and path[-1][0] >= heading.level:
                path.pop()
            path.append((heading.level, " ".join(heading.title.split())))
        return " \u203a ".join(title for _, title in path) or None

    def page_at(self, offset: int) -> int | None:
        """1-based page holding character ``offset``, or None for unpaged documents."""
        if not self.page_starts:
            return None
        return max(1, bisect.bisect_right(self.page_starts, offset))

    @property
    def pages(self) -> int | None:
        return len(self.page_starts) or None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A span of a document sized for the embedding model: ``text == document.text[start:end]``."""

    doc_id: str
    start: int
    end: int
    text: str
    page: int | None = None
    section: str | None = None


#: What a citation says about a passage read from a scanned page.
OCR_LABEL = "scanned page, OCR"


def format_citation(
    source: str,
    page: int | None,
    section: str | None,
    start: int,
    end: int,
    *,
    ocr: bool = False,
) -> str:
    """Human-readable citation, e.g. ``deal.txt · item 7 · chars 2710–2934``
    (``… · scanned page, OCR`` when the passage was read by OCR)."""
    parts = [source]
    if page is not None:
        parts.append(f"p. {page}")
    if section:
        parts.append(section)
    parts.append(f"chars {start}\u2013{end}")
    if ocr:
        parts.append(OCR_LABEL)
    return " \u00b7 ".join(parts)


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrieved passage with everything needed to cite and check it."""

    text: str
    score: float
    source: str
    title: str
    page: int | None
    section: str | None
    start: int
    end: int
    #: The sentence that best answers, as offsets in the same document text as ``start``
    #: and ``end`` (``start <= answer_start < answer_end <= end``); None when unknown.
    answer_start: int | None = None
    answer_end: int | None = None
    #: The passage comes (at least partly) from a page read by OCR: check the image.
    ocr: bool = False
    #: Lowest mean OCR word confidence (0-100) of its scanned pages; None without OCR.
    ocr_confidence: float | None = None

    @property
    def citation(self) -> str:
        return format_citation(
            self.source, self.page, self.section, self.start, self.end, ocr=self.ocr
        )

    @property
    def answer(self) -> str:
        """The best-answering sentence (the whole passage when it is not known)."""
        if self.answer_start is None or self.answer_end is None:
            return self.text
        return self.text[self.answer_start - self.start : self.answer_end - self.start]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: the dataclass fields plus ``citation``."""
        data = asdict(self)
        data["score"] = float(self.score)
        data["citation"] = self.citation
        return data


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """What the index knows about one indexed document (for listings)."""

    source: str
    title: str
    kind: str
    pages: int | None
    chunks: int
    chars: int
    indexed_at: str
    sha256: str
    duplicates: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What a rebuild did with one file.

    ``status`` is one of added, changed, renamed, unchanged, removed, duplicate, skipped.
    """

    source: str
    status: str
    reason: str = ""
    chunks: int = 0


@dataclass(slots=True)
class BuildReport:
    """Summary of one (re)build: per-file outcomes plus totals."""

    outcomes: list[FileOutcome] = field(default_factory=list)
    full: bool = False
    full_reason: str = ""
    documents: int = 0
    chunks: int = 0
    embedded_chunks: int = 0
    #: Answering sentences embedded on their own (:mod:`tpd_qa.sentences`).
    embedded_sentences: int = 0
    seconds: float = 0.0

    def by_status(self, status: str) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def skipped(self) -> list[FileOutcome]:
        return self.by_status("skipped")

    def counts(self) -> dict[str, int]:
        names = ("added", "changed", "renamed", "removed", "unchanged", "duplicate", "skipped")
        return {name: len(self.by_status(name)) for name in names}
