"""Turn the files of a corpus folder into :class:`~tpd_qa.records.Document` objects.

Three steps, each usable on its own:

* :func:`discover` walks a corpus folder and lists the files worth indexing
  (plus the ones it had to skip, with a reason), without reading them;
* :func:`read_file` reads one file with size and emptiness checks;
* :func:`parse` turns the bytes into plain text, headings, page offsets and a title,
  choosing the parser by the file suffix but checking that the content matches.

Every failure is reported as :class:`~tpd_qa.errors.IngestError` with a short reason.

Modules, leaf first (imports point up this list only): ``formats`` (the one registry of
supported formats), ``parsed`` (the parsers' result and shared text helpers), ``read``
(reading files, decoding text), ``headings`` (line headings and titles), one module per
format (``plaintext``, ``markdown``, ``pdf``, ``docx``, ``html``, ``image``; ``ocr`` reads
scanned pages with Tesseract and caches them, ``pdfscan`` finds a PDF's scanned pages),
``parser`` (bytes to a
Document through the registry) and ``discovery`` (walking the corpus).
"""

from __future__ import annotations

from tpd_qa.ingest.discovery import Candidate, discover
from tpd_qa.ingest.formats import (
    EXTRACTION_VERSION,
    FORMATS,
    SUPPORTED_SUFFIXES,
    Format,
    format_for,
    sniff,
)
from tpd_qa.ingest.ocr import CACHE_DIR_NAME as OCR_CACHE_DIR_NAME
from tpd_qa.ingest.ocr import OcrOptions
from tpd_qa.ingest.parsed import MAX_TEXT_CHARS
from tpd_qa.ingest.parser import load_document, parse
from tpd_qa.ingest.read import DEFAULT_MAX_BYTES, content_hash, read_file

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EXTRACTION_VERSION",
    "FORMATS",
    "MAX_TEXT_CHARS",
    "OCR_CACHE_DIR_NAME",
    "SUPPORTED_SUFFIXES",
    "Candidate",
    "Format",
    "OcrOptions",
    "content_hash",
    "discover",
    "format_for",
    "load_document",
    "parse",
    "read_file",
    "sniff",
]
