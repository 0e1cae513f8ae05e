"""Everything ``tpd-qa`` writes to a terminal, made safe from the documents it shows.

Document text, titles, sections, file names and skip reasons are written by whoever
wrote the corpus. A file name holding ``ESC]0;…BEL`` would set the terminal's title,
``ESC[2J`` clear the screen, CR overwrite the line and U+202E reverse it. So every line
of text output passes through :func:`visible`, which shows such characters as escapes
(``\\x1b``, ``\\r``, ``\\u202e``) instead of sending them. JSON output stays exact: the
same characters are written as JSON ``\\u`` escapes, which parse back to the original.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Final, TextIO

from tpd_qa.errors import Remedy, TpdQaError
from tpd_qa.records import BuildReport, Document, DocumentInfo, Passage, format_citation
from tpd_qa.text import heading_lines
from tpd_qa.watch.status import CHANGE_KINDS, Rebuild

__all__ = [
    "document_lines",
    "json_text",
    "parse_citation",
    "passage_lines",
    "rebuild_line",
    "show_lines",
    "report_dict",
    "report_lines",
    "visible",
    "write_error",
    "write_json",
    "write_lines",
]

# C0 and C1 controls and DEL; bidi embeddings, overrides, isolates and marks; line and
# paragraph separators; lone surrogates (undecodable file-name bytes).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# What ``json`` leaves raw (it escapes C0 controls itself; the rest only occurs in strings).
_JSON_UNSAFE = re.compile(
    "[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: object) -> str:
    """``text`` with every control, bidi-control and lone-surrogate character shown as an escape.

    Idempotent, and the result holds only characters a terminal displays as themselves.
    """
    return _UNSAFE.sub(_escape, str(text))


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(value: object, *, ascii_only: bool = False) -> str:
    """``value`` as indented JSON that a terminal shows as it is and that parses back exactly.

    ``json`` escapes C0 controls itself; C1 controls, bidi controls, separators and lone
    surrogates (which only occur inside JSON strings) are escaped here as ``\\uXXXX``.
    """
    return _JSON_UNSAFE.sub(_json_escape, json.dumps(value, indent=2, ensure_ascii=ascii_only))


def write_lines(lines: Iterable[str], stream: TextIO | None = None) -> None:
    """Write each line (made :func:`visible`) followed by a newline."""
    out = stream or sys.stdout
    for line in lines:
        out.write(visible(line) + "\n")


def write_json(value: object, *, ascii_only: bool = False) -> None:
    sys.stdout.write(json_text(value, ascii_only=ascii_only) + "\n")


#: What the CLI tells the user to do for each remedy an error carries.
REMEDY_TEXT: Final[dict[Remedy, str]] = {
    "build": ": run `tpd-qa index` first",
    "rebuild": ": run `tpd-qa index` to rebuild it for this model",
    "rebuild_full": ": run `tpd-qa index --full`",
    "wait": "; try again when it finishes",
    "choose_index": "; choose another --index",
    "choose_corpus": "; choose another --corpus",
    "choose_reranker": "; set TPD_QA_RERANKER to a CrossEncoder folder, or unset it",
}


def error_message(exc: TpdQaError) -> str:
    """A library error in the CLI's words: its message, then what to run or change."""
    return f"{exc}{REMEDY_TEXT[exc.remedy] if exc.remedy else ''}"


def write_error(message: str) -> None:
    """The one ``tpd-qa: error: …`` line on stderr."""
    sys.stderr.write(f"tpd-qa: error: {visible(message)}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------- index


def report_lines(report: BuildReport, corpus: Path, index_dir: Path) -> list[str]:
    """The text report of ``tpd-qa index``: headline, one line per change, totals."""
    headline = "Full rebuild" if report.full else "Incremental update"
    if report.full_reason:
        headline += f" ({visible(report.full_reason)})"
    lines = [f"{headline}: {visible(corpus)} -> {visible(index_dir)}"]
    for outcome in report.outcomes:
        if outcome.status == "unchanged":
            continue
        detail = (
            f" ({outcome.chunks} chunks)" if outcome.chunks and outcome.status != "skipped" else ""
        )
        reason = f" - {visible(outcome.reason)}" if outcome.reason else ""
        lines.append(f"  {outcome.status:<9} {visible(outcome.source)}{detail}{reason}")
    counts = ", ".join(f"{n} {name}" for name, n in report.counts().items())
    sentences = f", {report.embedded_sentences} sentences" if report.embedded_sentences else ""
    lines.append(
        f"{report.documents} documents, {report.chunks} chunks "
        f"({report.embedded_chunks} embedded now{sentences}) in {report.seconds:.1f} s. "
        f"{counts}."
    )
    return lines


def report_dict(report: BuildReport) -> dict[str, object]:
    """The JSON report of ``tpd-qa index --json``."""
    return {
        "full": report.full,
        "full_reason": report.full_reason,
        "documents": report.documents,
        "chunks": report.chunks,
        "embedded_chunks": report.embedded_chunks,
        "embedded_sentences": report.embedded_sentences,
        "seconds": round(report.seconds, 3),
        "counts": report.counts(),
        "files": [
            {"source": o.source, "status": o.status, "reason": o.reason, "chunks": o.chunks}
            for o in report.outcomes
        ],
    }


# ---------------------------------------------------------------------- watch

_NAMED_FILES = 3  # a rebuild touching at most this many files names them


def rebuild_line(rebuild: Rebuild, retry: float | None = None) -> str:
    """One line for a rebuild ``tpd-qa watch`` ran, e.g. ``[12:03:04] 1 added, 1 skipped ·
    14 documents, 230 chunks · 0.4 s · added memo.pdf, skipped scan.pdf (no text layer)``;
    for a failed one, why and (``retry`` seconds) when it is tried again."""
    clock = time.strftime("%H:%M:%S", time.localtime(rebuild.finished))
    report = rebuild.report
    if report is None:
        again = f"; trying again in {retry:g} s" if retry is not None else ""
        return f"[{clock}] rebuild failed: {visible(rebuild.error)}{again}"
    headline = rebuild.summary()
    if report.full:
        reason = f" ({visible(report.full_reason)})" if report.full_reason else ""
        headline = f"full rebuild{reason}: {headline}"
    parts = [
        f"[{clock}] {headline}",
        f"{report.documents} documents, {report.chunks} chunks",
        f"{rebuild.finished - rebuild.started:.1f} s",
    ]
    files = [(kind, o) for kind in CHANGE_KINDS for o in rebuild.files(kind)]
    if 0 < len(files) <= _NAMED_FILES:
        named = []
        for kind, outcome in files:
            reason = f" ({visible(outcome.reason)})" if outcome.reason else ""
            named.append(f"{kind} {visible(outcome.source)}{reason}")
        parts.append(", ".join(named))
    return " \u00b7 ".join(parts)


# ---------------------------------------------------------------------- ask and docs


def _headings_inline(text: str) -> str:
    """``text`` with each Markdown heading line as "Heading —" (markers dropped), for a
    passage printed as one wrapped paragraph."""
    out, position = [], 0
    for start, words, end in heading_lines(text):
        out += [text[position:start], text[words:end].rstrip(), " \u2014"]
        position = end
    out.append(text[position:])
    return "".join(out)


def passage_lines(passages: list[Passage], width: int | None = None) -> list[str]:
    """Ranked passages: citation and score, title, the answer sentence (» …), then the text."""
    if not passages:
        return ["No passages matched the question."]
    width = width or min(100, max(60, _terminal_width() - 4))
    lines: list[str] = []
    for rank, passage in enumerate(passages, start=1):
        ocr = (
            f", OCR confidence {passage.ocr_confidence:.0f}"
            if passage.ocr_confidence is not None
            else ""
        )
        lines.append(f"[{rank}] {visible(passage.citation)}  (score {passage.score:.4f}{ocr})")
        if passage.title:
            lines.append(f"    {visible(passage.title)}")
        if passage.answer_start is not None and passage.answer != passage.text:
            answer = visible(" ".join(passage.answer.split()))
            lines.extend(
                textwrap.wrap(
                    answer, width=width, initial_indent="    » ", subsequent_indent="      "
                )
            )
        body = visible(" ".join(_headings_inline(passage.text).split()))
        lines.extend(
            textwrap.wrap(body, width=width, initial_indent="    ", subsequent_indent="    ")
        )
        lines.append("")
    return lines


def document_lines(documents: list[DocumentInfo]) -> list[str]:
    """One line per indexed document: source, kind, pages, chunks, title."""
    lines = []
    for doc in documents:
        pages = f", {doc.pages} pages" if doc.pages else ""
        lines.append(
            f"{visible(doc.source)}  [{visible(doc.kind)}{pages}, {doc.chunks} chunks]  "
            f"{visible(doc.title)}"
        )
    return lines


def document_dicts(documents: list[DocumentInfo]) -> list[dict[str, object]]:
    return [asdict(doc) for doc in documents]


# ---------------------------------------------------------------------- show

_CITATION_CHARS = re.compile(r"chars (\d+)\s*[\u2013-]\s*(\d+)\s*$")


def parse_citation(text: str) -> tuple[str, int | None, int | None]:
    """``(source, start, end)`` of a citation as ``ask`` prints it (``deal.txt · p. 2 ·
    chars 10–90``); a bare source path gives ``(path, None, None)``."""
    parts = text.strip().split(" \u00b7 ")
    found = _CITATION_CHARS.fullmatch(parts[-1].strip()) if len(parts) > 1 else None
    if found is None:
        return text.strip(), None, None
    return parts[0], int(found.group(1)), int(found.group(2))


def show_lines(document: Document, start: int, end: int, context: int) -> list[str]:
    """A passage in its document: the citation, the title, then the text around it with
    the passage between ``>>>`` and ``<<<`` (each line made :func:`visible` on writing)."""
    text = document.text
    page = document.page_at(start)
    lines = [
        format_citation(document.source, page, document.section_at(start), start, end),
        document.title,
        "",
    ]
    before_start = max(0, start - context)
    after_end = min(len(text), end + context)
    body = (
        ("\u2026" if before_start > 0 else "")
        + text[before_start:start]
        + (">>>" + text[start:end] + "<<<" if end > start else "")
        + text[end:after_end]
        + ("\u2026" if after_end < len(text) else "")
    )
    lines.extend(body.split("\n"))
    return lines


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100
