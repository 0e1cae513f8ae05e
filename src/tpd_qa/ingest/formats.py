"""The one registry of supported document formats: suffixes, kind, content signature, parser.

This module is the leaf of :mod:`tpd_qa.ingest`: it imports nothing from the package, so
discovery, the parsers and :mod:`tpd_qa.uploads` all read the same list. Adding a format
means one :class:`Format` entry here and one module in this package that defines
``parse(data: bytes, source: str) -> Parsed`` (formats that may need OCR, ``reads_scans``,
also take ``ocr: OcrOptions | None``).
"""

from __future__ import annotations

import codecs
import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final, Literal

__all__ = [
    "EXTRACTION_VERSION",
    "FOREIGN_SIGNATURES",
    "FORMATS",
    "SUPPORTED_SUFFIXES",
    "Format",
    "Kind",
    "Signature",
    "foreign_signature",
    "format_for",
    "sniff",
]

#: How documents' text is extracted; bumping it makes old indexes re-parse every file once
#: (2: PDF text from PDFium character by character, so highlights find exact characters;
#: 3: a numbered line wrapped onto a lower-case line is no section heading;
#: 4: running headers, running footers and page numbers leave PDF pages, and a sentence
#: running on to the next page joins it by a line break; no heading right after a line
#: that goes on (``::=``); HTML loses headings' permalink marks and navigation landmarks).
EXTRACTION_VERSION: int = 4

#: What :attr:`tpd_qa.records.Document.kind` says about a document.
Kind = Literal["txt", "md", "pdf", "docx", "html", "png", "jpeg", "tiff"]

#: How far into a file a signature that allows leading junk (PDF) is looked for.
_SIGNATURE_WINDOW: Final = 1024


@dataclass(frozen=True, slots=True)
class Signature:
    """Magic bytes that identify a file format by its first bytes."""

    magic: bytes
    #: What the content is, for messages: "a PDF", "a PNG image".
    what: str
    #: The signature may appear anywhere in the first ``_SIGNATURE_WINDOW`` bytes
    #: (PDF readers accept junk before ``%PDF-``).
    anywhere_in_head: bool = False

    def starts(self, data: bytes) -> bool:
        """Does ``data`` begin with the signature (leading whitespace allowed)?"""
        return data.startswith(self.magic) or (
            data[:_SIGNATURE_WINDOW].lstrip().startswith(self.magic)
        )

    def found_in(self, data: bytes) -> bool:
        """Does ``data`` carry the signature where a reader of the format would accept it?"""
        if self.anywhere_in_head:
            return self.magic in data[:_SIGNATURE_WINDOW]
        return self.starts(data)


PDF_SIGNATURE: Final = Signature(b"%PDF-", "a PDF", anywhere_in_head=True)
ZIP_SIGNATURE: Final = Signature(b"PK\x03\x04", "a zip archive (DOCX, XLSX...)")
PNG_SIGNATURE: Final = Signature(b"\x89PNG\r\n\x1a\n", "a PNG image")
JPEG_SIGNATURE: Final = Signature(b"\xff\xd8\xff", "a JPEG image")
TIFF_SIGNATURE: Final = Signature(b"II*\x00", "a TIFF image")
TIFF_BE_SIGNATURE: Final = Signature(b"MM\x00*", "a TIFF image")


@dataclass(frozen=True, slots=True)
class Format:
    """One supported document format."""

    #: The :attr:`Document.kind` of documents of this format.
    kind: Kind
    #: Human name for messages.
    label: str
    #: File name suffixes (lower case, with the dot); the first is the usual one.
    suffixes: tuple[str, ...]
    #: Module of :mod:`tpd_qa.ingest` whose ``parse(data, source)`` reads this format.
    parser: str
    #: Binary formats: the content's signature. ``None`` for text formats, whose bytes
    #: are decoded and must not carry any signature of :data:`FOREIGN_SIGNATURES`.
    signature: Signature | None = None
    #: Zip-based formats: the member that every file of the format holds.
    zip_member: str | None = None
    #: Further signatures of the same format (big-endian TIFF).
    other_signatures: tuple[Signature, ...] = ()
    #: Its pages may be scans: the parser takes ``ocr`` options (PDF, images).
    reads_scans: bool = False

    @property
    def signatures(self) -> tuple[Signature, ...]:
        return () if self.signature is None else (self.signature, *self.other_signatures)

    @property
    def is_text(self) -> bool:
        return self.signature is None


FORMATS: Final[tuple[Format, ...]] = (
    Format("txt", "plain text", (".txt",), "plaintext"),
    Format("md", "Markdown", (".md", ".markdown"), "markdown"),
    Format("html", "HTML", (".html", ".htm"), "html"),
    Format("pdf", "PDF", (".pdf",), "pdf", PDF_SIGNATURE, reads_scans=True),
    Format("docx", "Word .docx", (".docx",), "docx", ZIP_SIGNATURE, "word/document.xml"),
    Format("png", "PNG image", (".png",), "image", PNG_SIGNATURE, reads_scans=True),
    Format("jpeg", "JPEG image", (".jpg", ".jpeg"), "image", JPEG_SIGNATURE, reads_scans=True),
    Format(
        "tiff",
        "TIFF image",
        (".tif", ".tiff"),
        "image",
        TIFF_SIGNATURE,
        other_signatures=(TIFF_BE_SIGNATURE,),
        reads_scans=True,
    ),
)

_BY_SUFFIX: Final[dict[str, Format]] = {s: f for f in FORMATS for s in f.suffixes}

#: Every file name suffix tpd_qa reads.
SUPPORTED_SUFFIXES: Final[frozenset[str]] = frozenset(_BY_SUFFIX)

#: Signatures of content that is never text: a text-format file starting with one of
#: these is refused (a renamed PDF, image, archive, program...).
FOREIGN_SIGNATURES: Final[tuple[Signature, ...]] = (
    PDF_SIGNATURE,
    ZIP_SIGNATURE,
    Signature(b"PK\x05\x06", "an empty zip archive"),
    PNG_SIGNATURE,
    Signature(b"GIF87a", "a GIF image"),
    Signature(b"GIF89a", "a GIF image"),
    JPEG_SIGNATURE,
    TIFF_SIGNATURE,
    TIFF_BE_SIGNATURE,
    Signature(b"\x7fELF", "a program"),
    Signature(b"MZ\x90\x00", "a Windows program"),
    Signature(b"\xca\xfe\xba\xbe", "a program"),
    Signature(b"\x00asm", "a WebAssembly module"),
    Signature(b"\x1f\x8b\x08", "a gzip archive"),
    Signature(b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"),
    Signature(b"Rar!\x1a\x07", "a RAR archive"),
    Signature(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document"),
    Signature(b"SQLite format 3\x00", "an SQLite database"),
)

# UTF-16 text holds NUL bytes, so its byte order marks exempt it from the NUL check.
_UTF16_BOMS: Final = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_NUL_WINDOW: Final = 8192


def format_for(name: str) -> Format | None:
    """The format that the suffix of the file name ``name`` selects, if supported."""
    return _BY_SUFFIX.get(PurePosixPath(name).suffix.lower())


def foreign_signature(data: bytes) -> Signature | None:
    """The signature of a non-text format that ``data`` starts with, if any."""
    return next((s for s in FOREIGN_SIGNATURES if s.starts(data)), None)


def sniff(data: bytes) -> str:
    """What the bytes look like, whatever their name says.

    A binary format's kind (``pdf``, ``docx``), ``zip`` for another zip archive,
    ``binary:<what>`` for other non-text content, or ``text``.
    """
    for fmt in FORMATS:
        if not any(signature.found_in(data) for signature in fmt.signatures):
            continue
        if fmt.zip_member is None:
            return fmt.kind
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return "binary:a damaged zip archive"
        return fmt.kind if fmt.zip_member in names else "zip"
    signature = foreign_signature(data)
    if signature is not None:
        return f"binary:{signature.what}"
    if not data.startswith(_UTF16_BOMS) and b"\x00" in data[:_NUL_WINDOW]:
        return "binary:binary data"
    return "text"
