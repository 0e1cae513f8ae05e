"""From bytes to a :class:`~tpd_qa.records.Document`: the registry picks the format by the
file name's suffix, the format's module parses, and the result is checked."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tpd_qa.errors import IngestError
from tpd_qa.ingest.formats import Format, format_for
from tpd_qa.ingest.ocr import OcrOptions
from tpd_qa.ingest.parsed import Parsed, ParseFunction, check_length, short
from tpd_qa.ingest.read import EMPTY, content_hash, read_file
from tpd_qa.records import Document

__all__ = ["load_document", "parse", "parser_of"]

logger = logging.getLogger(__name__)

#: ``parse(data, source, ocr)`` of a format whose pages may be scans.
_ScanParseFunction = Callable[[bytes, str, OcrOptions | None], Parsed]


def parser_of(fmt: Format) -> ParseFunction:
    """The ``parse`` function of the module that reads ``fmt`` (imported on first use)."""
    module = importlib.import_module(f"{__package__}.{fmt.parser}")
    function: ParseFunction = module.parse
    return function


def _scan_parser_of(fmt: Format) -> _ScanParseFunction:
    module = importlib.import_module(f"{__package__}.{fmt.parser}")
    function: _ScanParseFunction = module.parse
    return function


def parse(data: bytes, source: str, *, ocr: OcrOptions | None = None) -> Document:
    """Turn the bytes of one file into a :class:`Document`; the suffix of ``source`` picks
    the format. Raises :class:`IngestError` (and nothing else) when that is impossible.

    ``ocr`` says how scanned pages (PDF pages without a text layer, images) are read:
    by default with Tesseract and no cache; ``OcrOptions(enabled=False)`` skips them.
    """
    fmt = format_for(source)
    if fmt is None:
        suffix = PurePosixPath(source).suffix.lower()
        raise IngestError(f"unsupported file type {suffix or '(no extension)'}", source)
    if not data.strip():
        raise IngestError(EMPTY, source)
    try:
        if fmt.reads_scans:
            parsed = _scan_parser_of(fmt)(data, source, ocr)
        else:
            parsed = parser_of(fmt)(data, source)
        check_length(len(parsed.text))
    except IngestError as exc:
        if exc.path:
            raise
        raise IngestError(exc.reason, source) from exc
    except Exception as exc:
        logger.debug("parser failure for %s", source, exc_info=True)
        raise IngestError(f"could not parse: {type(exc).__name__}: {short(exc)}", source) from exc
    text = parsed.text
    headings = tuple(h for h in parsed.headings if h.title and text[h.start : h.end] == h.title)
    if len(headings) != len(parsed.headings):  # pragma: no cover - defensive
        logger.warning(
            "%s: dropped %d inconsistent headings", source, len(parsed.headings) - len(headings)
        )
    return Document(
        source=source,
        title=parsed.title,
        text=text,
        kind=fmt.kind,
        sha256=content_hash(data),
        page_starts=parsed.page_starts,
        headings=headings,
        page_ocr=parsed.page_ocr,
        notes=parsed.notes,
    )


def load_document(path: Path, root: Path, *, ocr: OcrOptions | None = None) -> Document:
    """Read and parse ``path``; its ``source`` is the POSIX path relative to ``root``."""
    source = _relative_source(Path(path), Path(root))
    try:
        data = read_file(path)
    except IngestError as exc:
        raise IngestError(exc.reason, source) from exc
    return parse(data, source, ocr=ocr)


def _relative_source(path: Path, root: Path) -> str:
    absolute, base = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    try:
        return absolute.relative_to(base).as_posix()
    except ValueError:
        pass
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return path.name
