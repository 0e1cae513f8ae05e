"""The scanned pages of a PDF: which pages need OCR, rendered with pypdfium2, read by
:mod:`tpd_qa.ingest.ocr`.

A page needs OCR when its text layer has (almost) no text and it shows an image; pages
with a text layer are left as they are, so a mixed PDF reads only its scans.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tpd_qa.errors import IngestError
from tpd_qa.ingest.ocr import OcrOptions, PageSource, low_confidence_notes, read_pages
from tpd_qa.ingest.parsed import normalize, short

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["ScannedPages", "read_scanned_pages"]

#: A page whose text layer has fewer visible characters than this is taken as a scan
#: (a scan often carries a stamped page number or a few stray glyphs).
MIN_LAYER_CHARS: Final = 16
#: Rendering resolution for OCR (Tesseract reads best at about 300 dpi)...
_DPI: Final = 300
#: ...unless that makes the longer side of the page image more pixels than this.
_MAX_SIDE: Final = 4200


@dataclass(frozen=True, slots=True)
class ScannedPages:
    """Page texts with the scans read in, their OCR confidences and report notes."""

    texts: list[str]
    page_ocr: tuple[float | None, ...] = ()
    notes: tuple[str, ...] = ()
    #: Why there is no text at all, when the scans could not be read.
    empty_reason: str = ""


def read_scanned_pages(data: bytes, texts: list[str], ocr: OcrOptions | None) -> ScannedPages:
    """``texts`` (one per page, from the text layer) with the scanned pages read by OCR."""
    needy = [n for n, text in enumerate(texts) if len("".join(text.split())) < MIN_LAYER_CHARS]
    if not needy:
        return ScannedPages(texts)
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(data)
    except Exception as exc:  # pypdf read it: leave the pages as they are
        return ScannedPages(texts, notes=(f"cannot render pages for OCR: {short(exc)}",))
    lock = threading.Lock()  # PDFium is not thread-safe: one page rendered at a time
    try:
        scans = [n for n in needy if _shows_image(document, n)]
        if not scans:
            return ScannedPages(texts)
        sources = [_renderer(document, n, lock) for n in scans]
        what = f"scanned PDF ({len(scans)} page{'s' if len(scans) != 1 else ''} without text)"
        try:
            readings = read_pages(sources, ocr or OcrOptions(), what=what)
        except IngestError as exc:
            return ScannedPages(texts, notes=(exc.reason,), empty_reason=exc.reason)
    finally:
        with lock:
            document.close()
    out = list(texts)
    confidences: list[float | None] = [None] * len(texts)
    for number, reading in zip(scans, readings, strict=True):
        confidences[number] = reading.confidence
        text = normalize(reading.text).strip() if reading.readable else ""
        out[number] = text or out[number]
    notes = tuple(low_confidence_notes(confidences))
    return ScannedPages(out, tuple(confidences), notes, "; ".join(notes))


def _shows_image(document: object, number: int) -> bool:
    import pypdfium2.raw as raw

    page = document[number]  # type: ignore[index]
    try:
        return any(True for _ in page.get_objects(filter=(raw.FPDF_PAGEOBJ_IMAGE,)))
    finally:
        page.close()


def _renderer(document: object, number: int, lock: threading.Lock) -> PageSource:
    def render() -> Image:
        with lock:
            page = document[number]  # type: ignore[index]
            try:
                width, height = page.get_size()
                scale = min(_DPI / 72, _MAX_SIDE / max(width, height, 1))
                bitmap = page.render(scale=scale, grayscale=True)
                image: Image = bitmap.to_pil()
                image.load()
                return image
            finally:
                page.close()

    return render
