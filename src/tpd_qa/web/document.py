"""The document view: an indexed document opened at a passage, as HTML.

A PDF shows the rendered page (:mod:`tpd_qa.pages`) with a highlight element over each
line of the passage; any other format shows the extracted text with the passage marked
and an outline of its headings. A document that was changed, removed or never indexed,
or a path leading out of the corpus, shows a plain notice instead. All document text is
escaped and bidi-isolated (:func:`tpd_qa.web.views.isolate`).
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tpd_qa.errors import SourceError
from tpd_qa.pages import DEFAULT_SCALE, read_original, render, source_path
from tpd_qa.records import Document
from tpd_qa.web.views import isolate, isolate_name, render_state

__all__ = ["DocumentRequest", "ZOOMS", "open_document", "parse_request"]

#: Zoom levels offered (rendering scales, pixels per PDF point).
ZOOMS = (1.0, DEFAULT_SCALE, 2.0, 3.0)
_NOTICES = {
    "changed": "This document has changed since it was indexed",
    "missing": "This document is not available",
    "outside": "This link does not point to a document in the corpus",
}


@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """What a link or an "Open in document" button asks for."""

    source: str
    start: int = 0
    end: int = 0
    page: int | None = None
    sha: str | None = None
    zoom: float = DEFAULT_SCALE


def _int(value: Any, default: int | None) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def parse_request(params: dict[str, Any]) -> DocumentRequest | None:
    """A request from query parameters (``doc``, ``start``, ``end``, ``pg``, ``sha``,
    ``zoom``; ``page`` is taken for ``pg``); None when there is no ``doc``."""
    source = str(params.get("doc") or "")
    if not source:
        return None
    start = max(0, _int(params.get("start"), 0) or 0)
    end = max(start, _int(params.get("end"), start) or start)
    try:
        zoom = float(params.get("zoom") or DEFAULT_SCALE)
    except ValueError:
        zoom = DEFAULT_SCALE
    zoom = min(ZOOMS, key=lambda z: abs(z - zoom))
    sha = str(params["sha"]) if params.get("sha") else None
    page = _int(params.get("pg", params.get("page")), None)
    return DocumentRequest(source, start, end, page, sha, zoom)


def _notice(reason: str, detail: str) -> str:
    return render_state("notice", _NOTICES.get(reason, "Cannot open the document"), detail)


def _head(document: Document, page: int | None, extra: str = "") -> str:
    where = f" · page {page} of {document.pages}" if page is not None else ""
    return (
        f'<div class="tq-doc-head"><strong>{isolate(document.title)}</strong> '
        f'<span class="tq-source">{isolate_name(document.source)}</span>{where}{extra}</div>'
    )


def _box(left: float, top: float, right: float, bottom: float) -> str:
    """A highlight element over a fraction of the page image."""
    return (
        f'<div class="tq-hl" style="position:absolute;left:{100 * left:.3f}%;'
        f"top:{100 * top:.3f}%;width:{100 * (right - left):.3f}%;"
        f'height:{100 * (bottom - top):.3f}%"></div>'
    )


def _request_link(request: DocumentRequest, **changes: Any) -> str:
    params: dict[str, Any] = {
        "doc": request.source,
        "start": request.start,
        "end": request.end,
        "pg": request.page,
        "sha": request.sha,
        "zoom": f"{request.zoom:g}",
    }
    params.update(changes)
    return "?" + urlencode({k: v for k, v in params.items() if v is not None})


def _button(request: DocumentRequest, label: str, enabled: bool, css: str, **changes: Any) -> str:
    link = escape(_request_link(request, **changes))
    state = "" if enabled else " disabled"
    return f'<button type="button" class="tq-open {css}" data-link="{link}"{state}>{label}</button>'


def _pdf_nav(request: DocumentRequest, page: int, pages: int) -> str:
    larger = [z for z in ZOOMS if z > request.zoom]
    smaller = [z for z in ZOOMS if z < request.zoom]
    out = f"{max(smaller):g}" if smaller else None
    into = f"{min(larger):g}" if larger else None
    return (
        '<div class="tq-doc-nav">'
        + _button(request, "‹ Previous page", page > 1, "tq-prev", pg=page - 1)
        + _button(request, "Next page ›", page < pages, "tq-next", pg=page + 1)
        + _button(request, "Zoom out", out is not None, "tq-zoom-out", pg=page, zoom=out)
        + _button(request, "Zoom in", into is not None, "tq-zoom-in", pg=page, zoom=into)
        + "</div>"
    )


def _pdf_view(path: Path, document: Document, request: DocumentRequest) -> str:
    page = request.page or document.page_at(request.start) or 1
    page = max(1, min(page, document.pages or 1))
    spans = [(request.start, request.end)] if request.end > request.start else []
    image = render(path, document, page, spans, scale=request.zoom)
    boxes = "".join(
        _box(left / image.width, top / image.height, right / image.width, bottom / image.height)
        for left, top, right, bottom in image.rects
    )
    section = document.section_at(document.page_starts[page - 1] if spans == [] else request.start)
    extra = f' · <span class="tq-section">{isolate(section)}</span>' if section else ""
    data = base64.b64encode(image.png).decode("ascii")
    nav = _pdf_nav(request, page, document.pages or 1)
    return (
        f'<section class="tq-docview" data-kind="pdf" data-page="{page}" '
        f'data-pages="{document.pages}" data-zoom="{request.zoom:g}">'
        f'<div class="tq-doc-bar">{_head(document, page, extra)}{nav}</div>'
        f'<div class="tq-page" style="position:relative;width:{image.width}px;max-width:100%">'
        f'<img src="data:image/png;base64,{data}" alt="Page {page}" '
        'style="width:100%;display:block">'
        f"{boxes}</div></section>"
    )


def _text_view(document: Document, request: DocumentRequest) -> str:
    text = document.text
    start, end = min(request.start, len(text)), min(request.end, len(text))
    cuts = sorted({0, len(text), start, end, *(h.start for h in document.headings)})
    heading_at = {h.start: (n, h) for n, h in enumerate(document.headings)}
    out: list[str] = []
    for begin, stop in itertools.pairwise(cuts):
        piece = isolate(text[begin:stop])
        if begin in heading_at:
            number, heading = heading_at[begin]
            piece = f'<span id="tq-h{number}" class="tq-heading tq-l{heading.level}"></span>{piece}'
        if start <= begin and stop <= end and end > start:
            marker = ' id="tq-passage"' if begin == start else ""
            piece = f'<mark class="tq-hl"{marker}>{piece}</mark>'
        out.append(piece)
    outline = "".join(
        f'<li class="tq-l{h.level}"><a href="#tq-h{n}">{isolate(h.title)}</a></li>'
        for n, h in enumerate(document.headings)
    )
    return (
        f'<section class="tq-docview" data-kind="{escape(document.kind)}">'
        f'<div class="tq-doc-bar">{_head(document, None)}</div>'
        + (f'<nav class="tq-outline"><ul>{outline}</ul></nav>' if outline else "")
        + f'<div class="tq-doc-text" style="white-space:pre-wrap">{"".join(out)}</div></section>'
    )


def open_document(corpus: Path, documents: dict[str, Document], request: DocumentRequest) -> str:
    """The document view for ``request`` (``documents`` by source: what is indexed)."""
    try:
        path = source_path(corpus, request.source)
        document = documents.get(request.source)
        if document is None:
            raise SourceError(f"{request.source!r} is not an indexed document", "missing")
        if request.sha and not document.sha256.startswith(request.sha.lower()):
            raise SourceError(
                f"{request.source} was re-indexed since this link was made", "changed"
            )
        if document.kind == "pdf":
            return _pdf_view(path, document, request)
        read_original(path, document)
        return _text_view(document, request)
    except SourceError as exc:
        return _notice(exc.reason, str(exc))
