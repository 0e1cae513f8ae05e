"""Answers written out for other programs and people: JSON, Markdown and CSV, and the link
that opens a passage in the web UI. The CLI (``tpd-qa ask --format``) and the web UI's
Export button both use these, so a file is the same whichever made it.

Document text is untrusted: Markdown escapes every character that would format, link or
inject HTML, and CSV neutralises cells that a spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import Any, Literal, get_args
from urllib.parse import urlencode

from tpd_qa.records import Passage

__all__ = [
    "EXPORT_FORMATS",
    "ExportFormat",
    "csv_cell",
    "export",
    "markdown_text",
    "passage_link",
    "passage_rows",
]

ExportFormat = Literal["json", "markdown", "csv"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)
#: File suffix and MIME type of each format.
SUFFIXES: dict[ExportFormat, tuple[str, str]] = {
    "json": (".json", "application/json"),
    "markdown": (".md", "text/markdown"),
    "csv": (".csv", "text/csv"),
}

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def passage_link(passage: Passage, base_url: str = "", *, sha256: str | None = None) -> str:
    """The web UI address that opens ``passage`` highlighted in its document:
    ``base_url?doc=…&start=…&end=…`` (and ``&pg=…``, ``&sha=…`` when known).

    The page is ``pg``, not ``page``: Gradio's own ``?page=`` names a page of a
    multi-page app, and the server refuses an unknown one."""
    params: dict[str, str | int] = {
        "doc": passage.source,
        "start": passage.start,
        "end": passage.end,
    }
    if passage.page is not None:
        params["pg"] = passage.page
    if sha256:
        params["sha"] = sha256[:16]
    return f"{base_url}?{urlencode(params)}"


def passage_rows(
    passages: Sequence[Passage], links: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One dict per passage, best first: ``rank``, the passage's fields, ``citation`` and
    (when ``links`` are given) ``link``."""
    rows = []
    for rank, passage in enumerate(passages, start=1):
        row = {"rank": rank, **passage.to_dict()}
        if links is not None:
            row["link"] = links[rank - 1]
        rows.append(row)
    return rows


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet runs as a formula: text starting with ``=``, ``+``,
    ``-``, ``@``, tab or CR gets a leading apostrophe; control and bidi-override characters
    are dropped. Numbers stay numbers."""
    if not isinstance(value, str):
        return value
    value = _CONTROLS.sub("", value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def markdown_text(text: str) -> str:
    """``text`` as literal Markdown: punctuation backslash-escaped, ``<`` and ``&`` as
    entities, controls and bidi overrides dropped, whitespace runs as single spaces."""
    text = _CONTROLS.sub("", " ".join(text.split()))
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _markdown(question: str, rows: list[dict[str, Any]]) -> str:
    lines = [f"# {markdown_text(question)}" if question else "# Answers", ""]
    if not rows:
        lines.append("No passages matched the question.")
    for row in rows:
        lines.append(f"## {row['rank']}. {markdown_text(row['citation'])}")
        lines.append("")
        details = [f"score {row['score']:.4f}"]
        if row.get("title"):
            details.insert(0, f"*{markdown_text(row['title'])}*")
        lines.append(" · ".join(details))
        if row.get("link"):
            lines.append(f"[Open in document](<{row['link'].replace('>', '%3E')}>)")
        lines.append("")
        lines.append(f"> {markdown_text(row['text'])}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_CSV_COLUMNS = ("rank", "score", "source", "title", "page", "section", "start", "end")


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    columns = [*_CSV_COLUMNS, "citation", "text", *(["link"] if rows and "link" in rows[0] else [])]
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell("" if row[c] is None else row[c]) for c in columns])
    return out.getvalue()


def export(
    passages: Sequence[Passage],
    fmt: ExportFormat,
    *,
    question: str = "",
    links: Sequence[str] | None = None,
) -> str:
    """The passages (best first) as a JSON list, a Markdown report or a CSV table."""
    rows = passage_rows(passages, links)
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return _markdown(question, rows)
    if fmt == "csv":
        return _csv(rows)
    raise ValueError(f"unknown export format {fmt!r}")
