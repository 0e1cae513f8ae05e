"""Validate and store files uploaded through the web UI (no Gradio here).

An upload is accepted only when its name is usable after sanitising, its suffix is a
supported format, its bytes really are that format (magic bytes, then a full parse),
it is within the size limit and its content is not already in the corpus. Accepted
files are written next to the corpus's other files under a name that never replaces
an existing file.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tpd_qa.errors import IngestError, UploadError
from tpd_qa.ingest import (
    DEFAULT_MAX_BYTES,
    FORMATS,
    SUPPORTED_SUFFIXES,
    Format,
    OcrOptions,
    content_hash,
    format_for,
    parse,
    sniff,
)
from tpd_qa.ingest.ocr import OFF_REASON as OCR_OFF_REASON
from tpd_qa.limits import MAX_UPLOAD_BYTES

__all__ = [
    "UPLOAD_MAX_BYTES",
    "MAX_FILES_PER_UPLOAD",
    "MAX_NAME_CHARS",
    "SUPPORTED_SUFFIXES",
    "StoredUpload",
    "sanitize_filename",
    "sniff",
    "check_content",
    "read_upload",
    "store_upload",
]

#: Largest accepted upload (bytes); never more than the corpus reader's own limit.
UPLOAD_MAX_BYTES: int = min(DEFAULT_MAX_BYTES, MAX_UPLOAD_BYTES)
#: Most files accepted in one upload action.
MAX_FILES_PER_UPLOAD: int = 20
#: Longest file name stem kept (characters).
MAX_NAME_CHARS: int = 100

_ALLOWED_PUNCTUATION = frozenset(" ._-()[]+,&'")
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)


@dataclass(frozen=True, slots=True)
class StoredUpload:
    """An accepted upload: the name it came with and where it was written."""

    original: str
    path: Path
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def sanitize_filename(name: str) -> str:
    """A safe file name for ``name``: no folders, no hidden name, a supported suffix.

    Path components are dropped (``../../x.txt`` becomes ``x.txt``), control and
    unusual characters become ``_``, leading dots and spaces are removed and long
    stems are shortened. Raises :class:`UploadError` when nothing usable is left or
    the suffix is not a supported document type.
    """
    base = re.split(r"[/\\]", str(name))[-1]
    base = unicodedata.normalize("NFC", base)
    cleaned = "".join(
        ch
        if (ch.isalnum() or ch in _ALLOWED_PUNCTUATION) and unicodedata.category(ch)[0] != "C"
        else "_"
        for ch in base
    )
    cleaned = re.sub(r"\s+", " ", cleaned)
    cleaned = re.sub(r"_{2,}", "_", cleaned).strip(" ._-")
    suffix = PurePosixPath(cleaned).suffix.lower()
    stem = cleaned[: -len(suffix)] if suffix else cleaned
    stem = stem.strip(" ._-")
    if suffix not in SUPPORTED_SUFFIXES:
        label = suffix or "(no extension)"
        allowed = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UploadError(f"unsupported file type {label} (allowed: {allowed})")
    if not stem:
        raise UploadError("the file name has no usable characters")
    if stem.lower() in _RESERVED:
        stem = f"file-{stem}"
    if len(stem) > MAX_NAME_CHARS:
        stem = stem[:MAX_NAME_CHARS].rstrip(" ._-")
    return f"{stem}{suffix}"


def check_content(data: bytes, name: str, *, max_bytes: int = UPLOAD_MAX_BYTES) -> None:
    """Refuse ``data`` unless it is a non-empty, indexable file of the type ``name`` says."""
    if len(data) > max_bytes:
        raise UploadError(f"too large ({_mib(len(data))}; the limit is {_mib(max_bytes)})")
    if not data.strip():
        raise UploadError("empty file")
    fmt = format_for(name)
    if fmt is None:
        raise UploadError(f"unsupported file type {PurePosixPath(name).suffix or '(no extension)'}")
    kind = sniff(data)
    expected = "text" if fmt.is_text else fmt.kind
    if kind != expected:
        raise UploadError(_mismatch(fmt, kind, name))
    try:  # scans are checked without OCR: the rebuild reads them once, into its cache
        document = parse(data, name, ocr=OcrOptions(enabled=False))
    except IngestError as exc:
        if OCR_OFF_REASON in exc.reason:
            return
        raise UploadError(exc.reason) from exc
    if not document.text.strip():
        raise UploadError("no text found in the file")


def _mismatch(fmt: Format, kind: str, name: str) -> str:
    """Why content that :func:`sniff` calls ``kind`` is not a file of format ``fmt``."""
    if fmt.kind == "pdf":
        return "not a PDF: the content does not start with %PDF-"
    if fmt.kind == "docx":
        found = "a zip without word/document.xml" if kind == "zip" else "not a zip"
        return f"not a Word .docx document ({found})"
    names: dict[str, str] = {"pdf": "a PDF", "docx": "a Word document", "zip": "a zip archive"}
    names |= {f.kind: f"a {f.label}" for f in FORMATS if f.parser == "image"}
    what = names.get(kind, kind.removeprefix("binary:"))
    if not fmt.is_text:
        return f"not a {fmt.label}: the content is {what if kind != 'text' else 'text'}"
    return f"the content is {what}, not {PurePosixPath(name).suffix[1:].upper()} text"


def read_upload(path: str | Path, *, max_bytes: int = UPLOAD_MAX_BYTES) -> bytes:
    """Read an uploaded temporary file, never more than ``max_bytes + 1`` bytes."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise UploadError(f"cannot read the uploaded file ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        size = os.path.getsize(path) if os.path.exists(path) else len(data)
        raise UploadError(f"too large ({_mib(size)}; the limit is {_mib(max_bytes)})")
    return data


def _free_name(folder: Path, name: str, attempt: int) -> Path:
    if attempt == 1:
        return folder / name
    suffix = PurePosixPath(name).suffix
    return folder / f"{name[: -len(suffix)]}-{attempt}{suffix}"


def store_upload(
    corpus: str | Path,
    original: str,
    data: bytes,
    *,
    known: Mapping[str, str] | None = None,
    max_bytes: int = UPLOAD_MAX_BYTES,
) -> StoredUpload:
    """Check ``data`` and write it into ``corpus`` under a sanitised, unused name.

    ``known`` maps content hashes already in the corpus to their file names: an
    identical upload is refused rather than stored twice. An existing file is never
    replaced: the name gets ``-2``, ``-3``... instead. The file appears atomically
    (written to a hidden temporary file, then hard-linked into place).
    """
    name = sanitize_filename(original)
    check_content(data, name, max_bytes=max_bytes)
    digest = content_hash(data)
    if known and digest in known:
        raise UploadError(f"the same content is already in the corpus as {known[digest]}")
    folder = Path(corpus)
    if not folder.is_dir():
        raise UploadError(f"the corpus folder {folder} does not exist")
    temporary = folder / f".upload-{os.getpid()}-{threading.get_ident()}-{digest[:12]}.tmp"
    created = False
    try:
        with open(temporary, "xb") as handle:
            created = True
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        for attempt in range(1, 1000):
            target = _free_name(folder, name, attempt)
            try:
                _link_or_copy(temporary, target, data)
            except FileExistsError:
                continue
            return StoredUpload(original=original, path=target, sha256=digest)
        raise UploadError(f"too many files named like {name}")
    except OSError as exc:
        raise UploadError(f"cannot write to the corpus folder ({exc.strerror or exc})") from exc
    finally:
        if created:
            with contextlib.suppress(OSError):
                temporary.unlink()


def _link_or_copy(temporary: Path, target: Path, data: bytes) -> None:
    """Make ``target`` appear with ``data``; FileExistsError if it exists (never replaced)."""
    try:
        os.link(temporary, target)
        return
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: exclusive create instead
        pass
    with open(target, "xb") as handle:
        handle.write(data)
