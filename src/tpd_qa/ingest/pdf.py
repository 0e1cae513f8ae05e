"""PDF: the text layer page by page (pages joined by a blank line), line headings, and the
metadata title when it is a real one.

Text comes from PDFium (``pypdfium2``) one character at a time, so every character of a
page's text is known by its PDFium character index: :func:`page_text` returns both, and
the same function run again on the same bytes gives the same text, which is how a
highlight finds the exact characters of an indexed span (:mod:`tpd_qa.pages`).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tpd_qa.errors import IngestError
from tpd_qa.ingest.formats import PDF_SIGNATURE
from tpd_qa.ingest.furniture import strip_furniture
from tpd_qa.ingest.headings import first_line_title, line_headings, title_from_name
from tpd_qa.ingest.ocr import OcrOptions
from tpd_qa.ingest.parsed import PageText, Parsed, check_length, collapse, short
from tpd_qa.ingest.pdfscan import read_scanned_pages

if TYPE_CHECKING:  # pragma: no cover
    import pypdfium2

__all__ = ["PAGE_RUN_ON", "PAGE_SEPARATOR", "PageText", "open_pdf", "page_text", "parse"]

logger = logging.getLogger(__name__)

#: What joins the texts of two pages in a document's text: a blank line, or (same
#: length) a line break when a sentence runs on from one page to the next.
PAGE_SEPARATOR = "\n\n"
PAGE_RUN_ON = " \n"
_JUNK_TITLE = re.compile(
    r"(?:untitled|document\d*|title|unknown|none|n/?a|slide \d+|powerpoint presentation|"
    r"microsoft (?:word|powerpoint|excel) - .*|.*\.(?:docx?|pdf|pptx?|xlsx?|rtf|odt|txt|"
    r"html?|indd|tex|dvi|qxd|ps|eps))",
    re.IGNORECASE,
)
_DROPPED = frozenset({0, 0xFFFE, 0xFFFF})
_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD
_LINE_END_HYPHEN = 2  # what PDFium reports for a hyphen that ends a line


def _good_metadata_title(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    title = collapse(value.replace("\x00", ""))
    if not title or len(title) > 300 or _JUNK_TITLE.fullmatch(title):
        return None
    if not any(c.isalpha() for c in title):
        return None
    return title


def open_pdf(data: bytes) -> pypdfium2.PdfDocument:
    """The PDFium document of ``data``; IngestError for an encrypted or corrupt file."""
    if not PDF_SIGNATURE.found_in(data):
        raise IngestError("not a PDF (content does not match the .pdf extension)")
    import pypdfium2

    start = data.find(b"%PDF-")  # PDFium wants the header first; readers allow junk before
    try:
        return pypdfium2.PdfDocument(data[start:] if start > 0 else data)
    except pypdfium2.PdfiumError as exc:
        if getattr(exc, "err_code", None) == _PASSWORD_ERROR:
            raise IngestError("encrypted PDF (password required)") from exc
        raise IngestError(f"corrupt PDF: {short(exc)}") from exc
    except Exception as exc:  # pragma: no cover - defensive
        raise IngestError(f"corrupt PDF: {short(exc)}") from exc


def _characters(textpage: Any) -> Iterator[tuple[str, int]]:
    """(character, PDFium index) for the page's characters: ``\r\n`` as one ``\n``, and
    a hyphen PDFium marks as ending a line (code 2) as ``-`` and a line break (index -1),
    as it is printed."""
    from pypdfium2 import raw

    count = textpage.count_chars()
    handle = textpage.raw
    previous_cr = False
    hyphen_break = False
    for index in range(count):
        code = raw.FPDFText_GetUnicode(handle, index)
        if code == _LINE_END_HYPHEN:
            previous_cr = False
            hyphen_break = True
            yield "-", index
            continue
        if code in _DROPPED or 0xD800 <= code <= 0xDFFF:
            continue
        if code == 0x0A and previous_cr:  # the \n of a \r\n pair: already given
            previous_cr = False
            continue
        if hyphen_break and code not in (0x0A, 0x0D):
            yield "\n", -1
        hyphen_break = False
        previous_cr = code == 0x0D
        yield ("\n" if previous_cr else chr(code)), index


def page_text(page: Any) -> PageText:
    """The text of a PDFium page as indexed: lines without trailing whitespace, no blank
    lines at the start, no whitespace at the end; with each character's PDFium index."""
    textpage = page.get_textpage()
    try:
        pairs = list(_characters(textpage))
    finally:
        textpage.close()
    kept: list[tuple[str, int]] = []
    line: list[tuple[str, int]] = []
    for pair in itertools.chain(pairs, [("\n", -1)]):
        if pair[0] != "\n":
            line.append(pair)
            continue
        while line and line[-1][0].isspace():
            line.pop()
        kept.extend(line)
        kept.append(pair)
        line = []
    kept.pop()  # the sentinel
    start = 0
    while start < len(kept) and kept[start][0] == "\n":
        start += 1
    end = len(kept)
    while end > start and kept[end - 1][0].isspace():
        end -= 1
    kept = kept[start:end]
    return PageText("".join(c for c, _ in kept), tuple(i for _, i in kept))


def _page_texts(pdf: Any, source: str) -> list[PageText]:
    pages: list[PageText] = []
    failures = 0
    total = 0
    for number in range(1, len(pdf) + 1):
        try:
            page = page_text(pdf[number - 1])
        except Exception as exc:
            failures += 1
            logger.warning("%s: cannot extract text of page %d: %s", source, number, short(exc))
            page = PageText("", ())
        total += len(page.text) + len(PAGE_SEPARATOR)
        check_length(total - len(PAGE_SEPARATOR))
        pages.append(page)
    if failures == len(pages):
        raise IngestError("corrupt PDF: text extraction failed on every page")
    return pages


def _separator(before: str, after: str) -> str:
    """A line break where a sentence runs on (the page ends in a word or a comma and the
    next starts in lower case), so the passage goes on too; else a blank line."""
    if (before[-1:].isalnum() or before.endswith(",")) and after[:1].islower():
        return PAGE_RUN_ON
    return PAGE_SEPARATOR


def parse(data: bytes, source: str, ocr: OcrOptions | None = None) -> Parsed:
    pdf = open_pdf(data)
    try:
        if len(pdf) == 0:
            raise IngestError("corrupt PDF: the document has no pages")
        layer = _page_texts(pdf, source)
        try:
            meta_title = pdf.get_metadata_dict().get("Title")
        except Exception as exc:
            logger.debug("%s: unreadable metadata: %s", source, exc)
            meta_title = None
    finally:
        pdf.close()
    # OCR of pages without a text layer; the others lose their headers and footers
    scans = read_scanned_pages(data, [page.text for page in layer], ocr)
    read = scans.page_ocr or (None,) * len(layer)
    texts = [
        scanned if confidence is not None else kept.text
        for scanned, confidence, kept in zip(scans.texts, read, strip_furniture(layer), strict=True)
    ]
    if not any(t.strip() for t in texts):
        raise IngestError(scans.empty_reason or "no text layer (scanned PDF? OCR it first)")

    text = texts[0] + "".join(_separator(a, b) + b for a, b in itertools.pairwise(texts))
    lengths = (len(t) + len(PAGE_SEPARATOR) for t in texts[:-1])
    page_starts = tuple(itertools.accumulate(lengths, initial=0))
    headings = line_headings(text)
    title = (
        _good_metadata_title(meta_title)
        or first_line_title(text)
        or (headings[0].title if headings else None)
        or title_from_name(source)
    )
    return Parsed(title, text, headings, page_starts, scans.page_ocr, scans.notes)
