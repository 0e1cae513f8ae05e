"""Pages of PDF originals: where a passage's characters are, and the page drawn with them
highlighted.

A passage is a span ``[start, end)`` of a :class:`~tpd_qa.records.Document`'s text. For a
PDF, :func:`tpd_qa.ingest.pdf.page_text` maps each character of a page's text to the
PDFium character it came from, so the rectangles here are those characters' own boxes,
merged per line; no text is searched again. The file must be the one that was indexed
(same SHA-256) and extract to the same text, or :class:`~tpd_qa.errors.SourceError`
says it changed.

Coordinates of a :class:`Box` are PDF points on the unrotated page, origin bottom left
(PDFium's character boxes); :class:`PageImage` gives them in image pixels too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpd_qa.errors import SourceError
from tpd_qa.ingest.furniture import match
from tpd_qa.ingest.pdf import PAGE_SEPARATOR, open_pdf, page_text
from tpd_qa.ingest.read import content_hash
from tpd_qa.records import Document

__all__ = [
    "read_original",
    "DEFAULT_SCALE",
    "Box",
    "PageCache",
    "PageImage",
    "highlight_boxes",
    "render",
    "source_path",
]

#: Rendering scale: 1.5 pixels per PDF point (108 dpi), readable and small.
DEFAULT_SCALE = 1.5
_MAX_SCALE = 4.0
_HIGHLIGHT = (255, 214, 0, 110)  # translucent yellow
_OUTLINE = (214, 150, 0, 200)
Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Box:
    """A highlight rectangle on 1-based ``page``: PDF points, ``x0 < x1``, ``y0 < y1``."""

    page: int
    x0: float
    y0: float
    x1: float
    y1: float

    def contains(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


@dataclass(frozen=True, slots=True)
class PageImage:
    """A rendered page: PNG bytes, size in pixels and the highlights as pixel rectangles
    ``(left, top, right, bottom)``."""

    png: bytes
    width: int
    height: int
    rects: tuple[tuple[int, int, int, int], ...]


def source_path(corpus: Path, source: str) -> Path:
    """The file of corpus-relative ``source``; SourceError when it leads out of the corpus."""
    base = Path(corpus).resolve()
    if not source or "\x00" in source or Path(source).is_absolute():
        raise SourceError(f"{source!r} is not a path inside the corpus", "outside")
    path = (base / source).resolve()
    if path != base and base not in path.parents:
        raise SourceError(f"{source!r} is not a path inside the corpus", "outside")
    return path


def read_original(path: Path, document: Document) -> bytes:
    """The bytes of ``document``'s file at ``path``; SourceError ("missing" or "changed")
    when it is gone or no longer what was indexed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{document.source} is no longer in the corpus", "missing") from exc
    if content_hash(data) != document.sha256:
        raise SourceError(f"{document.source} has changed since it was indexed", "changed")
    return data


def _page_bounds(document: Document, page: int) -> tuple[int, int]:
    starts = document.page_starts
    if not 1 <= page <= len(starts):
        raise SourceError(f"{document.source} has no page {page}", "missing")
    end = starts[page] - len(PAGE_SEPARATOR) if page < len(starts) else len(document.text)
    return starts[page - 1], end


def _char_boxes(pdf: Any, document: Document, page: int, spans: Sequence[Span]) -> list[Box]:
    """The boxes of the non-space characters of ``spans`` on ``page``, in text order."""
    first, last = _page_bounds(document, page)
    pdf_page = pdf[page - 1]
    extracted = match(page_text(pdf_page), document.text[first:last])
    if extracted is None:
        raise SourceError(f"{document.source} no longer reads as it was indexed", "changed")
    textpage = pdf_page.get_textpage()
    boxes: list[Box] = []
    try:
        for start, end in spans:
            for offset in range(max(start, first), min(end, last)):
                if extracted.text[offset - first].isspace():
                    continue
                x0, y0, x1, y1 = textpage.get_charbox(extracted.chars[offset - first], loose=True)
                if x1 > x0 and y1 > y0:
                    boxes.append(Box(page, x0, y0, x1, y1))
    finally:
        textpage.close()
    return boxes


def _same_line(a: Box, b: Box) -> bool:
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    height = min(a.y1 - a.y0, b.y1 - b.y0)
    return overlap >= 0.5 * height and b.x0 >= a.x0 - 0.5 and b.x0 - a.x1 <= 2 * height


def merge_lines(boxes: Iterable[Box]) -> list[Box]:
    """Consecutive character boxes on one line joined into one rectangle each."""
    merged: list[Box] = []
    for box in boxes:
        last = merged[-1] if merged else None
        if last is not None and last.page == box.page and _same_line(last, box):
            merged[-1] = Box(
                box.page,
                min(last.x0, box.x0),
                min(last.y0, box.y0),
                max(last.x1, box.x1),
                max(last.y1, box.y1),
            )
        else:
            merged.append(box)
    return merged


def _pages_of(document: Document, start: int, end: int) -> range:
    first = document.page_at(start) or 1
    last = document.page_at(max(start, end - 1)) or first
    return range(first, last + 1)


def highlight_boxes(pdf_path: Path, document: Document, start: int, end: int) -> list[Box]:
    """The rectangles covering exactly the characters ``document.text[start:end]`` in the
    PDF at ``pdf_path`` (one per line part, on every page the span touches)."""
    if document.kind != "pdf":
        raise SourceError(f"{document.source} is not a PDF", "missing")
    pdf = open_pdf(read_original(Path(pdf_path), document))
    try:
        boxes: list[Box] = []
        for page in _pages_of(document, start, end):
            boxes.extend(_char_boxes(pdf, document, page, [(start, end)]))
    finally:
        pdf.close()
    return merge_lines(boxes)


class PageCache:
    """Rendered pages on disk, keyed by document hash, page, scale and highlighted spans;
    the oldest files go when there are more than ``limit``."""

    def __init__(self, directory: Path, limit: int = 256) -> None:
        self.directory = Path(directory)
        self.limit = limit

    @staticmethod
    def key(sha256: str, page: int, scale: float, spans: Sequence[Span]) -> str:
        spans_key = hashlib.sha256(json.dumps(sorted(spans)).encode()).hexdigest()[:16]
        return f"{sha256[:32]}-p{page}-s{scale:g}-{spans_key}"

    def get(self, key: str) -> PageImage | None:
        try:
            meta = json.loads((self.directory / f"{key}.json").read_text(encoding="utf-8"))
            png = (self.directory / f"{key}.png").read_bytes()
            rects = tuple(tuple(int(v) for v in r) for r in meta["rects"])
            return PageImage(png, int(meta["width"]), int(meta["height"]), rects)  # type: ignore[arg-type]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, image: PageImage) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            meta = {"width": image.width, "height": image.height, "rects": image.rects}
            for name, data in (
                (f"{key}.png", image.png),
                (f"{key}.json", json.dumps(meta).encode()),
            ):
                temporary = self.directory / f".{name}.{os.getpid()}.tmp"
                temporary.write_bytes(data)
                os.replace(temporary, self.directory / name)
            self._prune()
        except OSError:  # a cache that cannot be written only costs time
            return

    def _prune(self) -> None:
        files = sorted(self.directory.glob("*.png"), key=lambda p: p.stat().st_mtime)
        for old in files[: max(0, len(files) - self.limit)]:
            for path in (old, old.with_suffix(".json")):
                with contextlib.suppress(OSError):
                    path.unlink()


def render(
    pdf_path: Path,
    document: Document,
    page: int,
    spans: Sequence[Span] = (),
    *,
    scale: float = DEFAULT_SCALE,
    cache: PageCache | None = None,
) -> PageImage:
    """Page ``page`` of the PDF as PNG with the characters of ``spans`` highlighted."""
    if not 0.25 <= scale <= _MAX_SCALE:
        raise ValueError(f"scale must be between 0.25 and {_MAX_SCALE:g}")
    if document.kind != "pdf":
        raise SourceError(f"{document.source} is not a PDF", "missing")
    _page_bounds(document, page)
    spans = [(int(s), int(e)) for s, e in spans]
    key = PageCache.key(document.sha256, page, scale, spans)
    if cache is not None:
        cached = cache.get(key)
        if cached is not None:
            return cached
    pdf = open_pdf(read_original(Path(pdf_path), document))
    try:
        boxes = merge_lines(_char_boxes(pdf, document, page, spans)) if spans else []
        image = _draw(pdf[page - 1], boxes, scale)
    finally:
        pdf.close()
    if cache is not None:
        cache.put(key, image)
    return image


def _draw(pdf_page: Any, boxes: Sequence[Box], scale: float) -> PageImage:
    from PIL import Image, ImageDraw

    bitmap = pdf_page.render(scale=scale)
    convert = bitmap.get_posconv(pdf_page)
    base = bitmap.to_pil().convert("RGBA")
    rects: list[tuple[int, int, int, int]] = []
    for box in boxes:
        corners = [convert.to_bitmap(x, y) for x in (box.x0, box.x1) for y in (box.y0, box.y1)]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        rects.append((min(xs) - 1, min(ys) - 1, max(xs) + 1, max(ys) + 1))
    if rects:
        layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        for rect in rects:
            draw.rectangle(rect, fill=_HIGHLIGHT, outline=_OUTLINE)
        base = Image.alpha_composite(base, layer)
    out = io.BytesIO()
    base.convert("RGB").save(out, format="PNG", compress_level=6)
    return PageImage(out.getvalue(), base.width, base.height, tuple(rects))
