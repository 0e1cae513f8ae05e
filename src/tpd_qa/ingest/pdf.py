"""PDF: the text layer page by page (pages joined by a blank line), line headings, and the
metadata title when it is a real one."""

from __future__ import annotations

import io
import itertools
import logging
import re
from typing import Any

from tpd_qa.errors import IngestError
from tpd_qa.ingest.formats import PDF_SIGNATURE
from tpd_qa.ingest.headings import first_line_title, line_headings, title_from_name
from tpd_qa.ingest.ocr import OcrOptions
from tpd_qa.ingest.parsed import Parsed, check_length, collapse, normalize, short
from tpd_qa.ingest.pdfscan import read_scanned_pages

__all__ = ["parse"]

logger = logging.getLogger(__name__)

_PAGE_SEPARATOR = "\n\n"
_JUNK_TITLE = re.compile(
    r"(?:untitled|document\d*|title|unknown|none|n/?a|slide \d+|powerpoint presentation|"
    r"microsoft (?:word|powerpoint|excel) - .*|.*\.(?:docx?|pdf|pptx?|xlsx?|rtf|odt|txt|"
    r"html?|indd|tex|dvi|qxd|ps|eps))",
    re.IGNORECASE,
)


def _good_metadata_title(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    title = collapse(value.replace("\x00", ""))
    if not title or len(title) > 300 or _JUNK_TITLE.fullmatch(title):
        return None
    if not any(c.isalpha() for c in title):
        return None
    return title


def parse(data: bytes, source: str, ocr: OcrOptions | None = None) -> Parsed:
    if not PDF_SIGNATURE.found_in(data):
        raise IngestError("not a PDF (content does not match the .pdf extension)")
    from pypdf import PasswordType, PdfReader

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                decrypted = reader.decrypt("")
            except Exception as exc:
                raise IngestError(f"encrypted PDF (cannot decrypt: {short(exc)})") from exc
            if decrypted == PasswordType.NOT_DECRYPTED:
                raise IngestError("encrypted PDF (password required)")
        pages = list(reader.pages)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(f"corrupt PDF: {short(exc)}") from exc
    if not pages:
        raise IngestError("corrupt PDF: the document has no pages")

    texts: list[str] = []
    failures = 0
    total = 0
    for number, page in enumerate(pages, start=1):
        try:
            raw = page.extract_text() or ""
        except Exception as exc:
            failures += 1
            logger.warning("%s: cannot extract text of page %d: %s", source, number, short(exc))
            raw = ""
        page_text = "\n".join(line.rstrip() for line in normalize(raw).split("\n"))
        page_text = page_text.strip("\n").rstrip()
        total += len(page_text) + len(_PAGE_SEPARATOR)
        check_length(total - len(_PAGE_SEPARATOR))
        texts.append(page_text)
    if failures == len(pages):
        raise IngestError("corrupt PDF: text extraction failed on every page")
    scans = read_scanned_pages(data, texts, ocr)  # OCR of pages without a text layer
    texts = scans.texts
    if not any(t.strip() for t in texts):
        raise IngestError(scans.empty_reason or "no text layer (scanned PDF? OCR it first)")

    text = _PAGE_SEPARATOR.join(texts)
    lengths = (len(t) + len(_PAGE_SEPARATOR) for t in texts[:-1])
    page_starts = tuple(itertools.accumulate(lengths, initial=0))
    headings = line_headings(text)

    try:
        meta = reader.metadata
        meta_title = meta.title if meta is not None else None
    except Exception as exc:
        logger.debug("%s: unreadable metadata: %s", source, exc)
        meta_title = None
    title = (
        _good_metadata_title(meta_title)
        or first_line_title(text)
        or (headings[0].title if headings else None)
        or title_from_name(source)
    )
    return Parsed(title, text, headings, page_starts, scans.page_ocr, scans.notes)
