"""Reading scanned pages with Tesseract: orientation, text, confidence, and a cache.

Pages are read through ``pytesseract`` (Debian's ``tesseract-ocr`` with the ``eng`` and
``jpn`` models). A page is first read as it is; when the mean word confidence is low, the
orientation Tesseract's OSD reports is corrected and the page read again, keeping the
better reading (upright pages, the common case, cost one call).

Every reading is cached under :attr:`OcrOptions.cache_dir` as one JSON file per page,
keyed by the SHA-256 of the page's pixels, the languages and Tesseract's version: a page
is never read twice, whatever its file is called or which model indexes it.

This module knows nothing about PDFs or image files: :mod:`tpd_qa.ingest.pdf` and
:mod:`tpd_qa.ingest.image` hand it page images.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from tpd_qa.errors import IngestError

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = [
    "CACHE_DIR_NAME",
    "INSTALL_HINT",
    "MIN_CONFIDENCE",
    "OFF_REASON",
    "OcrOptions",
    "PageReading",
    "PageSource",
    "low_confidence_notes",
    "read_pages",
    "tesseract_version",
]

logger = logging.getLogger(__name__)

#: Name of the folder inside an index folder that holds the OCR cache.
CACHE_DIR_NAME: Final = "ocr-cache"
#: The command that installs what OCR needs (named in skip reasons).
INSTALL_HINT: Final = "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-jpn"
#: Part of the reason given for scans while OCR is off.
OFF_REASON: Final = "OCR is off (--no-ocr)"
#: Pages read with a mean word confidence below this (0-100) are unreadable: their text
#: is dropped and the page is reported. Measured with bench/bench_ocr.py: clean generated
#: pages read at 85-96, noise and blank-ish scans at 0-35.
MIN_CONFIDENCE: Final = 45.0
#: Below this confidence an upright reading is retried in the orientation OSD reports.
_RETRY_CONFIDENCE: Final = 75.0
#: Cache entry layout version (part of the key: a new layout never reads old entries).
_CACHE_VERSION: Final = 1
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_ROTATION = re.compile(r"Rotate:\s*(\d+)")


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """How (and whether) scanned pages are read; handed from the index down to parsers."""

    enabled: bool = True
    #: Folder of the page cache (``<index>/ocr-cache``); None reads without a cache.
    cache_dir: Path | None = None
    #: Tesseract languages, as ``-l`` takes them.
    languages: str = "eng+jpn"
    #: Pages read at the same time (Tesseract runs as a subprocess: threads suffice).
    workers: int = 2
    #: ``on_page(done, total)`` after each page of a document.
    on_page: Callable[[int, int], None] | None = None


@dataclass(frozen=True, slots=True)
class PageReading:
    """What OCR made of one page: its text, mean word confidence (0-100) and rotation."""

    text: str
    confidence: float
    rotation: int = 0

    @property
    def readable(self) -> bool:
        return self.confidence >= MIN_CONFIDENCE


def _command() -> str:
    import pytesseract

    return str(pytesseract.pytesseract.tesseract_cmd)


_versions: dict[str, str] = {}
_versions_lock = threading.Lock()


def tesseract_version() -> str | None:
    """Tesseract's version, or None when it is not installed (or does not run)."""
    command = _command()
    path = shutil.which(command)
    if path is None:
        return None
    with _versions_lock:
        if path not in _versions:
            try:
                result = subprocess.run(
                    [path, "--version"], capture_output=True, text=True, timeout=30, check=True
                )
            except (OSError, subprocess.SubprocessError):
                return None
            first = (result.stdout or result.stderr).strip().splitlines()
            _versions[path] = first[0] if first else "tesseract"
        return _versions[path]


def _missing_reason(what: str) -> str:
    return f"{what}: Tesseract is not installed ({INSTALL_HINT})"


#: Makes one page image when called (pages are rendered one at a time, in the workers).
PageSource = Callable[[], "Image"]


def read_pages(pages: Sequence[PageSource], options: OcrOptions, *, what: str) -> list[PageReading]:
    """Read every page (in parallel, cached); ``what`` names them in skip reasons.

    Raises :class:`IngestError` when OCR is off or Tesseract is missing.
    """
    if not options.enabled:
        raise IngestError(f"{what}: {OFF_REASON}")
    version = tesseract_version()
    if version is None:
        raise IngestError(_missing_reason(what))
    cache = _Cache(options.cache_dir) if options.cache_dir is not None else None
    done = 0
    lock = threading.Lock()

    def one(page: PageSource) -> PageReading:
        nonlocal done
        image = page()
        key = _cache_key(image, options.languages, version)
        reading = cache.get(key) if cache else None
        if reading is None:
            reading = _read(image, options.languages)
            if cache:
                cache.put(key, reading)
        with lock:
            done += 1
            if options.on_page:
                options.on_page(done, len(pages))
        return reading

    workers = max(1, min(options.workers, len(pages)))
    try:
        if workers == 1:
            return [one(page) for page in pages]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr") as pool:
            return list(pool.map(one, pages))
    except _TesseractMissing as exc:
        raise IngestError(_missing_reason(what)) from exc


def low_confidence_notes(confidences: Sequence[float | None]) -> list[str]:
    """One note per OCR page read below :data:`MIN_CONFIDENCE` (pages numbered from 1)."""
    return [
        f"p. {number}: unreadable by OCR (mean confidence {value:.0f} < {MIN_CONFIDENCE:.0f})"
        for number, value in enumerate(confidences, start=1)
        if value is not None and value < MIN_CONFIDENCE
    ]


class _TesseractMissing(Exception):
    pass


def _read(image: Image, languages: str) -> PageReading:
    """Read one page upright; if that reads poorly, also in the orientation OSD reports."""
    best = _recognise(image, languages, 0)
    if best.confidence >= _RETRY_CONFIDENCE:
        return best
    rotation = _osd_rotation(image)
    if rotation:
        turned = _recognise(image.rotate(-rotation, expand=True, fillcolor="white"), languages, 0)
        if turned.confidence > best.confidence:
            best = PageReading(turned.text, turned.confidence, rotation)
    return best


def _osd_rotation(image: Image) -> int:
    """Clockwise degrees that make the page upright, by Tesseract's OSD (0 if unsure)."""
    import pytesseract

    try:
        report = pytesseract.image_to_osd(image, config="--psm 0")
    except pytesseract.TesseractNotFoundError as exc:
        raise _TesseractMissing from exc
    except pytesseract.TesseractError as exc:  # too few characters to tell
        logger.debug("OSD failed: %s", exc)
        return 0
    match = _ROTATION.search(str(report))
    return int(match.group(1)) % 360 if match else 0


def _recognise(image: Image, languages: str, rotation: int) -> PageReading:
    import pytesseract

    try:
        data = pytesseract.image_to_data(image, lang=languages, output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractNotFoundError as exc:
        raise _TesseractMissing from exc
    except pytesseract.TesseractError as exc:
        logger.warning("tesseract failed on a page: %s", exc)
        return PageReading("", 0.0, rotation)
    return _assemble(data, rotation)


def _assemble(data: dict[str, list[Any]], rotation: int) -> PageReading:
    """Text from Tesseract's word table: words of a line joined (CJK without spaces),
    lines by newlines, paragraphs by blank lines; and the mean word confidence."""
    paragraphs: list[list[str]] = []
    key: tuple[int, int, int] | None = None
    line_key: tuple[int, int, int, int] | None = None
    confidences: list[float] = []
    for word, conf, block, par, line in zip(
        data["text"],
        data["conf"],
        data["block_num"],
        data["par_num"],
        data["line_num"],
        strict=True,
    ):
        word = str(word).strip()
        confidence = float(conf)
        if not word or confidence < 0:
            continue
        confidences.append(confidence)
        page_key = (0, int(block), int(par))
        if page_key != key:
            paragraphs.append([])
            key, line_key = page_key, None
        lines = paragraphs[-1]
        this_line = (0, int(block), int(par), int(line))
        if this_line != line_key:
            lines.append(word)
            line_key = this_line
        elif _CJK.match(word[0]) and _CJK.match(lines[-1][-1]):
            lines[-1] += word
        else:
            lines[-1] += " " + word
    text = "\n\n".join("\n".join(lines) for lines in paragraphs)
    mean = sum(confidences) / len(confidences) if confidences else 0.0
    return PageReading(text, round(mean, 2), rotation)


def _cache_key(image: Image, languages: str, version: str) -> str:
    digest = hashlib.sha256()
    header = f"tpd-qa-ocr/{_CACHE_VERSION}\0{languages}\0{version}\0{image.mode}\0{image.size}\0"
    digest.update(header.encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


class _Cache:
    """Page readings as ``<dir>/<key[:2]>/<key>.json`` (written atomically)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> PageReading | None:
        try:
            record = json.loads(self._path(key).read_text(encoding="utf-8"))
            return PageReading(
                str(record["text"]), float(record["confidence"]), int(record["rotation"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, reading: PageReading) -> None:
        path = self._path(key)
        record = {"text": reading.text, "confidence": reading.confidence}
        record |= {"rotation": reading.rotation}
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
            os.replace(temporary, path)
        except OSError as exc:  # a read-only index still indexes, it just reads again
            logger.warning("cannot write the OCR cache %s: %s", path, exc)
            with contextlib.suppress(OSError):
                temporary.unlink()
