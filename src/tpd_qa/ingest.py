"""Turn the files of a corpus folder into :class:`~tpd_qa.records.Document` objects.

Three steps, each usable on its own:

* :func:`discover` walks a corpus folder and lists the files worth indexing
  (plus the ones it had to skip, with a reason), without reading them;
* :func:`read_file` reads one file with size and emptiness checks;
* :func:`parse` turns the bytes into plain text, headings, page offsets and a title,
  choosing the parser by the file suffix but checking that the content matches.

Every failure is reported as :class:`~tpd_qa.errors.IngestError` with a short reason.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import os
import re
import stat
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from tpd_qa.errors import IngestError
from tpd_qa.records import Document, Heading

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_TEXT_CHARS",
    "SUPPORTED_SUFFIXES",
    "Candidate",
    "content_hash",
    "discover",
    "load_document",
    "parse",
    "read_file",
]

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".txt", ".md", ".markdown", ".pdf", ".docx", ".html", ".htm"}
)
DEFAULT_MAX_BYTES: int = 50 * 1024 * 1024
MAX_TEXT_CHARS: int = 5_000_000

# Zip-bomb guard for DOCX files (checked on the zip directory before python-docx opens it).
DOCX_MAX_UNCOMPRESSED: int = 200 * 1024 * 1024
DOCX_MAX_RATIO: float = 200.0
DOCX_RATIO_MIN_SIZE: int = 10 * 1024 * 1024

_KINDS: dict[str, str] = {
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
}

_BINARY = "binary content, not text"
_EMPTY = "empty file"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file found by :func:`discover`.

    ``path`` is the absolute path on disk, ``source`` the POSIX path relative to the
    corpus root; ``skip_reason`` is set when the file cannot be indexed for a reason
    already known at discovery time.
    """

    path: Path
    source: str
    skip_reason: str | None = None


# ---------------------------------------------------------------------------------------
# discovery


def discover(corpus: Path, *, exclude: Sequence[Path] = ()) -> list[Candidate]:
    """List the files under ``corpus`` (recursively, sorted by ``source``).

    Hidden files and folders, ``__pycache__`` and the folders in ``exclude`` are ignored
    silently. Symbolic links to folders, links leading outside the corpus, broken links,
    unreadable folders and files of unsupported types are returned with a
    ``skip_reason``. Only directory entries are inspected; no file content is read.
    Raises :class:`IngestError` when ``corpus`` itself is not a readable folder.
    """
    root = Path(os.path.abspath(corpus))
    if not root.is_dir():
        reason = "corpus folder does not exist" if not root.exists() else "corpus is not a folder"
        raise IngestError(reason, str(corpus))
    root_real = root.resolve()
    excluded = {Path(p).resolve() for p in exclude}

    found: list[Candidate] = []
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        folder, rel = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if not rel:
                raise IngestError(
                    f"cannot read corpus folder: {_os_reason(exc)}", str(corpus)
                ) from exc
            logger.warning("cannot read folder %s: %s", folder, exc)
            found.append(Candidate(folder, rel, f"cannot read folder: {_os_reason(exc)}"))
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            child = Path(entry.path)
            child_rel = f"{rel}/{name}" if rel else name
            try:
                candidate, descend = _classify(entry, child, child_rel, root_real, excluded)
            except OSError as exc:  # e.g. the entry vanished or cannot be stat'ed
                logger.warning("cannot inspect %s: %s", child, exc)
                candidate = Candidate(child, child_rel, f"cannot read file: {_os_reason(exc)}")
                descend = False
            if descend:
                stack.append((child, child_rel))
            elif candidate is not None:
                found.append(candidate)
    found.sort(key=lambda c: c.source)
    return found


def _classify(
    entry: os.DirEntry[str], path: Path, rel: str, root_real: Path, excluded: set[Path]
) -> tuple[Candidate | None, bool]:
    """Decide what one directory entry is: (candidate or None, descend into it?)."""
    if entry.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):  # missing target or a link loop
            return Candidate(path, rel, "broken link"), False
        if target.is_dir():
            return Candidate(path, rel, "symbolic link to a directory is not followed"), False
        if not target.is_relative_to(root_real):
            return Candidate(path, rel, "link points outside the corpus"), False
        if target in excluded or any(target.is_relative_to(ex) for ex in excluded):
            return None, False
        return _by_suffix(path, rel), False
    if entry.is_dir(follow_symlinks=False):
        if entry.name == "__pycache__" or path.resolve() in excluded:
            return None, False
        return None, True
    if not entry.is_file(follow_symlinks=False):
        return Candidate(path, rel, "not a regular file"), False
    if path.resolve() in excluded:
        return None, False
    return _by_suffix(path, rel), False


def _by_suffix(path: Path, rel: str) -> Candidate:
    suffix = path.suffix.lower()
    if suffix in SUPPORTED_SUFFIXES:
        return Candidate(path, rel)
    label = suffix if suffix else "(no extension)"
    return Candidate(path, rel, f"unsupported file type {label}")


# ---------------------------------------------------------------------------------------
# reading


def read_file(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read a whole file, refusing files larger than ``max_bytes``, unreadable or empty ones.

    Never reads more than ``max_bytes + 1`` bytes, even if the file grows meanwhile.
    """
    where = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise IngestError("file not found", where) from exc
    except OSError as exc:
        raise IngestError(f"cannot read file: {_os_reason(exc)}", where) from exc
    if not stat.S_ISREG(info.st_mode):
        raise IngestError("not a regular file", where)
    if info.st_size > max_bytes:
        raise IngestError(_too_large(info.st_size, max_bytes), where)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise IngestError(f"cannot read file: {_os_reason(exc)}", where) from exc
    if len(data) > max_bytes:
        raise IngestError(_too_large(len(data), max_bytes, grew=True), where)
    if not data.strip():
        raise IngestError(_EMPTY, where)
    return data


def content_hash(data: bytes) -> str:
    """SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def load_document(path: Path, root: Path) -> Document:
    """Read and parse ``path``; its ``source`` is the POSIX path relative to ``root``."""
    source = _relative_source(Path(path), Path(root))
    try:
        data = read_file(path)
    except IngestError as exc:
        raise IngestError(exc.reason, source) from exc
    return parse(data, source)


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


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


_MIB = 1024 * 1024


def _fmt_size(n: int) -> str:
    if n >= _MIB:
        value, unit = n / _MIB, "MB"
    elif n >= 1024:
        value, unit = n / 1024, "KB"
    else:
        return f"{n} bytes"
    return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"


def _too_large(size: int, limit: int, *, grew: bool = False) -> str:
    shown, cap = _fmt_size(size), _fmt_size(limit)
    if shown == cap:
        shown, cap = f"{size:,} bytes", f"{limit:,} bytes"
    if grew:
        return f"file too large (more than {cap} limit; it grew while being read)"
    return f"file too large ({shown} > {cap} limit)"


# ---------------------------------------------------------------------------------------
# parsing: dispatch


class _Parsed(NamedTuple):
    title: str
    text: str
    headings: list[Heading]
    page_starts: tuple[int, ...] = ()


def parse(data: bytes, source: str) -> Document:
    """Turn the bytes of one file into a :class:`Document`; the suffix of ``source`` picks
    the format. Raises :class:`IngestError` (and nothing else) when that is impossible."""
    suffix = PurePosixPath(source).suffix.lower()
    parser = _PARSERS.get(suffix)
    if parser is None:
        label = suffix if suffix else "(no extension)"
        raise IngestError(f"unsupported file type {label}", source)
    if not data.strip():
        raise IngestError(_EMPTY, source)
    try:
        parsed = parser(data, source)
        _check_length(len(parsed.text))
    except IngestError as exc:
        if exc.path:
            raise
        raise IngestError(exc.reason, source) from exc
    except Exception as exc:
        logger.debug("parser failure for %s", source, exc_info=True)
        raise IngestError(f"could not parse: {type(exc).__name__}: {_short(exc)}", source) from exc
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
        kind=_KINDS[suffix],
        sha256=content_hash(data),
        page_starts=parsed.page_starts,
        headings=headings,
    )


def _short(exc: BaseException, limit: int = 160) -> str:
    message = str(exc).strip().splitlines()
    text = message[0].strip() if message else ""
    if not text:
        text = type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_length(n: int) -> None:
    if n > MAX_TEXT_CHARS:
        raise IngestError(f"text too long ({n:,} characters > {MAX_TEXT_CHARS:,} limit)")


def _normalize(text: str) -> str:
    """Newlines to ``\\n`` and NUL characters removed."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


# ---------------------------------------------------------------------------------------
# text decoding

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_MAGIC: tuple[bytes, ...] = (
    b"\x89PNG\r\n\x1a\n",
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"%PDF-",
    b"GIF87a",
    b"GIF89a",
    b"\xff\xd8\xff",
    b"\x7fELF",
    b"\x1f\x8b\x08",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
    b"SQLite format 3\x00",
    b"\x00asm",
    b"\xca\xfe\xba\xbe",
)

# Control characters (except tab/newline/VT/FF/CR), DEL, C1 controls, private use, U+FFFD.
_SUSPICIOUS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd]")
_BINARY_RATIO = 0.10


def _decode_text(data: bytes, declared: str | None = None) -> str:
    """Decode text bytes: BOM, then a declared charset, then strict UTF-8, then detection.

    Raises IngestError for binary data and for text that is empty or only whitespace.
    """
    head = data[:1024].lstrip()
    if any(head.startswith(magic) or data.startswith(magic) for magic in _MAGIC):
        raise IngestError(_BINARY)
    text: str | None = None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(codec)
                break
            except UnicodeDecodeError:
                continue
    if text is None and declared:
        try:
            text = data.decode(declared)
        except (UnicodeDecodeError, LookupError):
            text = None
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _detect(data)
    if text is None:
        raise IngestError(_BINARY)
    if not text.replace("\x00", "").strip():
        raise IngestError(_EMPTY)
    if len(_SUSPICIOUS.findall(text)) > _BINARY_RATIO * len(text):
        raise IngestError(_BINARY)
    return text


def _detect(data: bytes) -> str | None:
    """Decode with charset-normalizer; prefer cp1252 among equally plausible Latin code pages."""
    from charset_normalizer import from_bytes

    results = from_bytes(data)
    best = results.best()
    if best is None:
        return None
    if "cp1252" not in best.could_be_from_charset:
        for match in results:
            if (
                "cp1252" in match.could_be_from_charset
                and match.chaos <= best.chaos + 0.01
                and match.coherence >= best.coherence - 0.01
            ):
                try:
                    return data.decode("cp1252")
                except UnicodeDecodeError:
                    break
    return str(best)


# ---------------------------------------------------------------------------------------
# line-based headings and titles (txt, pdf)

_NUMBERED = re.compile(r"(\d{1,3}(?:\.\d{1,3}){0,5})\.?\s+(\S.*)")
_NUMBERED_LOOSE = re.compile(r"(\d{1,3}(?:\.\d{1,3}){0,5})\.?\s+\S")
_TOC_LEADER = re.compile(r"\.{3,}|…|\s{2,}\d+$")
_NOT_FINAL = (".", ",", ";", ":", "。", "、")


def _heading_level(line: str) -> int | None:
    """Level of a stripped line that looks like a heading, else None."""
    if len(line) >= 80 or line.endswith(_NOT_FINAL) or _TOC_LEADER.search(line):
        return None
    match = _NUMBERED.fullmatch(line)
    if match:
        rest = match.group(2)
        first = rest[0]
        if first.isalpha() and not first.islower() and sum(c.isalpha() for c in rest) >= 2:
            return match.group(1).count(".") + 1
        return None
    letters = [c for c in line if c.isalpha()]
    cased = [c for c in letters if c.isupper() or c.islower()]
    non_space = sum(not c.isspace() for c in line)
    if (
        len(cased) >= 4
        and all(c.isupper() for c in cased)
        and len(cased) >= 0.8 * len(letters)
        and len(cased) >= 0.5 * non_space
    ):
        return 1
    return None


def _numbered_depth(line: str) -> int | None:
    match = _NUMBERED_LOOSE.match(line)
    return match.group(1).count(".") + 1 if match else None


def _line_headings(text: str) -> list[Heading]:
    """Numbered section headings and short ALL-CAPS lines, each on a line of its own."""
    lines = text.split("\n")
    stripped = [line.strip() for line in lines]
    headings: list[Heading] = []
    pos = 0
    for i, line in enumerate(lines):
        start, pos = pos, pos + len(line) + 1
        title = stripped[i]
        if not title:
            continue
        level = _heading_level(title)
        if level is None:
            continue
        depth = _numbered_depth(title)
        if depth is not None:
            # A run of adjacent numbered lines of the same depth is a list or a table of
            # contents, not a series of headings.
            neighbours = [stripped[j] for j in (i - 1, i + 1) if 0 <= j < len(lines)]
            if any(n and _numbered_depth(n) == depth for n in neighbours):
                continue
        offset = start + len(line) - len(line.lstrip())
        headings.append(Heading(offset, offset + len(title), level, title))
    return headings


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _first_line_title(text: str) -> str | None:
    """The first non-empty line, when it is short and not a sentence."""
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        if len(line) <= 120 and not line.endswith((".", "。")) and any(c.isalnum() for c in line):
            return _collapse(line)
        return None
    return None


_ACRONYMS = frozenset({"us", "usa", "uk", "eu", "un", "ai", "ict", "nasa", "nato", "faq"})
_MINOR_WORDS = frozenset({"a", "an", "and", "at", "by", "for", "in", "of", "on", "or", "the", "to"})


def _title_from_name(source: str) -> str:
    """A readable title from a file name: ``us-japan-deal.txt`` -> ``US Japan Deal``."""
    stem = PurePosixPath(source).stem
    words = _collapse(re.sub(r"[-_]+", " ", stem)).split(" ")
    if any(ch.isupper() for ch in stem):
        titled = words
    else:
        titled = [
            w.upper() if w in _ACRONYMS else w if i and w in _MINOR_WORDS else w[:1].upper() + w[1:]
            for i, w in enumerate(words)
        ]
    return " ".join(titled) or source


def _parse_txt(data: bytes, source: str) -> _Parsed:
    text = _normalize(_decode_text(data))
    _check_length(len(text))
    title = _first_line_title(text) or _title_from_name(source)
    return _Parsed(title, text, _line_headings(text))


# ---------------------------------------------------------------------------------------
# markdown

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*")
_ATX_CLOSING = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_LIST_ITEM = re.compile(r" {0,3}(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")


def _markdown_headings(text: str) -> list[Heading]:
    """ATX and setext headings outside fenced code blocks and front matter."""
    lines = text.split("\n")
    offsets: list[int] = []
    pos = 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1

    first = 0
    if lines and lines[0].strip() == "---":  # YAML front matter
        for j in range(1, len(lines)):
            if lines[j].strip() in ("---", "..."):
                first = j + 1
                break

    headings: list[Heading] = []
    fence: str | None = None
    # index of a line that may be the content of a setext heading
    paragraph_start: int | None = None
    paragraph_lines = 0
    for i in range(first, len(lines)):
        line = lines[i]
        if fence is not None:
            match = _FENCE.fullmatch(line)
            if (
                match
                and match.group(1)[0] == fence[0]
                and len(match.group(1)) >= len(fence)
                and not match.group(2).strip()
            ):
                fence = None
            continue
        fence_match = _FENCE.fullmatch(line)
        if fence_match and not (fence_match.group(1)[0] == "`" and "`" in fence_match.group(2)):
            fence = fence_match.group(1)
            paragraph_start, paragraph_lines = None, 0
            continue
        atx = _ATX.fullmatch(line)
        if atx:
            content = atx.group(2) or ""
            content = _ATX_CLOSING.sub("", content) if content else ""
            content = content.strip()
            if content:
                rel = line.find(content, atx.end(1))
                start = offsets[i] + rel
                headings.append(Heading(start, start + len(content), len(atx.group(1)), content))
            paragraph_start, paragraph_lines = None, 0
            continue
        setext = _SETEXT.fullmatch(line)
        if setext and paragraph_start is not None and paragraph_lines == 1:
            content_line = lines[paragraph_start]
            content = content_line.strip()
            level = 1 if setext.group(1)[0] == "=" else 2
            start = offsets[paragraph_start] + len(content_line) - len(content_line.lstrip())
            headings.append(Heading(start, start + len(content), level, content))
            paragraph_start, paragraph_lines = None, 0
            continue
        if not line.strip():
            paragraph_start, paragraph_lines = None, 0
        elif paragraph_lines == 0:
            plain = not line.startswith(("    ", "\t", ">", "|")) and not _LIST_ITEM.match(line)
            paragraph_start = i if plain else None
            paragraph_lines = 1
        else:
            paragraph_lines += 1
    return headings


def _parse_markdown(data: bytes, source: str) -> _Parsed:
    text = _normalize(_decode_text(data))
    _check_length(len(text))
    headings = _markdown_headings(text)
    title = next((h.title for h in headings if h.level == 1), None)
    if title is None and headings:
        title = headings[0].title
    return _Parsed(_collapse(title) if title else _title_from_name(source), text, headings)


# ---------------------------------------------------------------------------------------
# PDF

_JUNK_TITLE = re.compile(
    r"(?:untitled|document\d*|title|unknown|none|n/?a|slide \d+|powerpoint presentation|"
    r"microsoft (?:word|powerpoint|excel) - .*|.*\.(?:docx?|pdf|pptx?|xlsx?|rtf|odt|txt|"
    r"html?|indd|tex|dvi|qxd|ps|eps))",
    re.IGNORECASE,
)


def _good_metadata_title(title: Any) -> str | None:
    if not isinstance(title, str):
        return None
    title = _collapse(title.replace("\x00", ""))
    if not title or len(title) > 300 or _JUNK_TITLE.fullmatch(title):
        return None
    if not any(c.isalpha() for c in title):
        return None
    return title


def _parse_pdf(data: bytes, source: str) -> _Parsed:
    if b"%PDF-" not in data[:1024]:
        raise IngestError("not a PDF (content does not match the .pdf extension)")
    from pypdf import PasswordType, PdfReader

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                decrypted = reader.decrypt("")
            except Exception as exc:
                raise IngestError(f"encrypted PDF (cannot decrypt: {_short(exc)})") from exc
            if decrypted == PasswordType.NOT_DECRYPTED:
                raise IngestError("encrypted PDF (password required)")
        pages = list(reader.pages)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(f"corrupt PDF: {_short(exc)}") from exc
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
            logger.warning("%s: cannot extract text of page %d: %s", source, number, _short(exc))
            raw = ""
        page_text = "\n".join(line.rstrip() for line in _normalize(raw).split("\n"))
        page_text = page_text.strip("\n").rstrip()
        total += len(page_text) + 2
        _check_length(total - 2)
        texts.append(page_text)
    if failures == len(pages):
        raise IngestError("corrupt PDF: text extraction failed on every page")
    if not any(t.strip() for t in texts):
        raise IngestError("no text layer (scanned PDF? OCR it first)")

    page_starts: list[int] = []
    offset = 0
    for page_text in texts:
        page_starts.append(offset)
        offset += len(page_text) + 2
    text = "\n\n".join(texts)
    headings = _line_headings(text)

    try:
        meta = reader.metadata
        meta_title = meta.title if meta is not None else None
    except Exception as exc:
        logger.debug("%s: unreadable metadata: %s", source, exc)
        meta_title = None
    title = (
        _good_metadata_title(meta_title)
        or _first_line_title(text)
        or (headings[0].title if headings else None)
        or _title_from_name(source)
    )
    return _Parsed(title, text, headings, tuple(page_starts))


# ---------------------------------------------------------------------------------------
# DOCX


def _check_zip(data: bytes) -> None:
    """Refuse non-zip data, zip bombs and archives without a main document part."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise IngestError("not a DOCX (content does not match the .docx extension)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise IngestError(f"corrupt DOCX: {_short(exc)}") from exc
    total = sum(m.file_size for m in members)
    if total > DOCX_MAX_UNCOMPRESSED:
        raise IngestError("suspicious compression (zip bomb?)")
    for member in members:
        if member.file_size > DOCX_RATIO_MIN_SIZE and (
            member.compress_size <= 0 or member.file_size / member.compress_size > DOCX_MAX_RATIO
        ):
            raise IngestError("suspicious compression (zip bomb?)")
    if not any(m.filename == "word/document.xml" for m in members):
        raise IngestError("corrupt DOCX: word/document.xml is missing")


_DOCX_HEADING = re.compile(r"heading ([1-9])", re.IGNORECASE)
_DOCX_LIST_STYLE = re.compile(r"list (number|bullet)(?: ([2-9]))?", re.IGNORECASE)


def _roman(n: int) -> str:
    numerals = (
        (1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
        (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"),
    )  # fmt: skip
    out = []
    for value, letters in numerals:
        while n >= value:
            out.append(letters)
            n -= value
    return "".join(out)


def _letters(n: int) -> str:
    out = ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        out = chr(ord("a") + rem) + out
    return out


def _list_marker(fmt: str, n: int) -> str | None:
    """Marker text for Word numbering format ``fmt`` and item number ``n``."""
    if fmt == "bullet":
        return "-"
    if fmt == "none":
        return None
    if fmt == "lowerLetter":
        return f"{_letters(n)}."
    if fmt == "upperLetter":
        return f"{_letters(n).upper()}."
    if fmt == "lowerRoman":
        return f"{_roman(n)}."
    if fmt == "upperRoman":
        return f"{_roman(n).upper()}."
    return f"{n}."


def _numbering_formats(document: Any) -> dict[tuple[str, int], str]:
    """(numId, level) -> numFmt from the numbering part, or {} when there is none."""
    from docx.oxml.ns import qn

    try:
        root = document.part.numbering_part.element
    except Exception:
        return {}
    abstract: dict[str, dict[int, str]] = {}
    for node in root.findall(qn("w:abstractNum")):
        levels: dict[int, str] = {}
        for lvl in node.findall(qn("w:lvl")):
            fmt = lvl.find(qn("w:numFmt"))
            try:
                levels[int(lvl.get(qn("w:ilvl"), "0"))] = (
                    fmt.get(qn("w:val"), "decimal") if fmt is not None else "decimal"
                )
            except ValueError:
                continue
        abstract[node.get(qn("w:abstractNumId"), "")] = levels
    formats: dict[tuple[str, int], str] = {}
    for num in root.findall(qn("w:num")):
        ref = num.find(qn("w:abstractNumId"))
        if ref is None:
            continue
        for level, fmt in abstract.get(ref.get(qn("w:val"), ""), {}).items():
            formats[(num.get(qn("w:numId"), ""), level)] = fmt
    return formats


def _paragraph_numbering(paragraph: Any) -> tuple[str, int] | None:
    from docx.oxml.ns import qn

    ppr = paragraph._p.pPr
    if ppr is None:
        return None
    numpr = ppr.find(qn("w:numPr"))
    if numpr is None:
        return None
    num_id = numpr.find(qn("w:numId"))
    ilvl = numpr.find(qn("w:ilvl"))
    if num_id is None or num_id.get(qn("w:val"), "0") == "0":
        return None
    try:
        level = int(ilvl.get(qn("w:val"), "0")) if ilvl is not None else 0
    except ValueError:
        level = 0
    return num_id.get(qn("w:val"), ""), max(0, min(level, 8))


class _TextBuilder:
    """Joins paragraphs with blank lines and records heading spans."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.headings: list[Heading] = []

    def add(self, paragraph: str, *, heading_level: int | None = None, prefix: str = "") -> None:
        if not paragraph.strip():
            return
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        start = self.length + len(prefix)
        self.parts.append(prefix + paragraph)
        self.length += len(prefix) + len(paragraph)
        _check_length(self.length)
        if heading_level is not None:
            self.headings.append(Heading(start, start + len(paragraph), heading_level, paragraph))

    def text(self) -> str:
        return "".join(self.parts)


def _parse_docx(data: bytes, source: str) -> _Parsed:
    _check_zip(data)
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(f"corrupt DOCX: {_short(exc)}") from exc

    try:
        builder, title_paragraph = _docx_text(document, blocks)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(f"corrupt DOCX: {_short(exc)}") from exc
    text = builder.text()
    try:
        core_title = _collapse(document.core_properties.title or "")
    except Exception:
        core_title = ""
    title = (
        core_title
        or title_paragraph
        or (builder.headings[0].title if builder.headings else None)
        or _title_from_name(source)
    )
    return _Parsed(title, text, builder.headings)


def _docx_text(document: Any, blocks: list[Any]) -> tuple[_TextBuilder, str | None]:
    """Paragraphs, lists and tables in document order; also the Title-style paragraph."""
    from docx.table import Table

    formats = _numbering_formats(document)
    builder = _TextBuilder()
    style_counters: dict[int, int] = {}
    num_counters: dict[str, list[int]] = {}
    title_paragraph: str | None = None

    for block in blocks:
        if isinstance(block, Table):
            style_counters.clear()
            builder.add(_docx_table(block))
            continue
        raw = _normalize(block.text)
        try:
            style = block.style.name if block.style is not None else ""
        except Exception:
            style = ""
        style = style or ""
        heading = _DOCX_HEADING.fullmatch(style)
        if style.lower() == "title" or heading:
            style_counters.clear()
            level = int(heading.group(1)) if heading else 1
            text = _collapse(raw)
            if style.lower() == "title" and text and title_paragraph is None:
                title_paragraph = text
            builder.add(text, heading_level=level)
            continue
        body = raw.strip()
        if not body:
            continue
        prefix = ""
        numbering = _paragraph_numbering(block)
        list_style = _DOCX_LIST_STYLE.fullmatch(style)
        if numbering is not None and numbering in formats:
            num_id, level = numbering
            counts = num_counters.setdefault(num_id, [0] * 9)
            counts[level] += 1
            counts[level + 1 :] = [0] * (8 - level)
            marker = _list_marker(formats[numbering], counts[level])
            prefix = f"{'  ' * level}{marker} " if marker else ""
        elif list_style:
            level = int(list_style.group(2) or 1)
            for deeper in [k for k in style_counters if k > level]:
                del style_counters[deeper]
            if list_style.group(1).lower() == "number":
                style_counters[level] = style_counters.get(level, 0) + 1
                marker = f"{style_counters[level]}."
            else:
                style_counters.pop(level, None)
                marker = "-"
            prefix = f"{'  ' * (level - 1)}{marker} "
        else:
            style_counters.clear()
        builder.add(body, prefix=prefix)
    return builder, title_paragraph


def _docx_table(table: Any) -> str:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if previous is not None and cell._tc is previous:  # horizontally merged cell
                continue
            previous = cell._tc
            cells.append(_collapse(_normalize(cell.text)))
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------
# HTML

_HTML_DROP = frozenset(
    {
        "script", "style", "noscript", "template", "nav", "header", "footer", "aside",
        "form", "iframe", "svg", "button", "select", "head", "object", "embed", "canvas",
        "math", "textarea",
    }
)  # fmt: skip
# When dropping the page furniture above leaves no text (e.g. a page wrapped in one big
# <form>), a second pass drops only what is never readable text.
_HTML_DROP_MINIMAL = frozenset(
    {"script", "style", "noscript", "template", "svg", "iframe", "head", "object", "embed"}
)
_HTML_BLOCK = frozenset(
    {
        "p", "div", "li", "tr", "pre", "blockquote", "section", "dt", "dd", "table", "ul",
        "ol", "dl", "menu", "article", "main", "body", "address", "figure", "figcaption",
        "hr", "details", "summary", "caption", "fieldset", "legend", "center", "hgroup",
        "thead", "tbody", "tfoot", "h1", "h2", "h3", "h4", "h5", "h6",
    }
)  # fmt: skip
_HTML_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)", re.IGNORECASE)


def _declared_charset(data: bytes) -> str | None:
    """The charset named by ``<meta charset>`` or an XML declaration, if usable."""
    head = data[:4096]
    match = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    if not match:
        return None
    name = match.group(1).decode("ascii", "replace").lower()
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    if codec.startswith(("utf-16", "utf-32")):  # a byte-oriented file cannot be UTF-16
        return "utf-8"
    if codec in ("latin-1", "iso8859-1", "ascii"):  # as browsers do
        return "cp1252"
    return codec


class _HtmlWalker:
    """Iterative HTML-to-text conversion (no recursion, so any nesting depth is fine)."""

    def __init__(self, drop: frozenset[str] = _HTML_DROP) -> None:
        self.drop = drop
        self.out = _TextBuilder()
        self.lines: list[list[str]] = [[]]
        self.pre_depth = 0
        self.pre_paragraph = False
        self.heading: tuple[Any, int] | None = None
        self.prefix = ""
        self.lists: list[list[Any]] = []
        self.rows: list[int] = []

    # -- paragraph buffer
    def text(self, value: str) -> None:
        if self.pre_depth and self.heading is None:
            self.pre_paragraph = True
            pieces = value.split("\n")
            self.lines[-1].append(pieces[0])
            self.lines.extend([piece] for piece in pieces[1:])
        else:
            self.lines[-1].append(value)

    def newline(self) -> None:
        if self.heading is not None:
            self.lines[-1].append(" ")
        else:
            self.lines.append([])

    def flush(self) -> None:
        if self.pre_paragraph:
            lines = ["".join(parts).rstrip() for parts in self.lines]
            while lines and not lines[0].strip():
                lines.pop(0)
            while lines and not lines[-1]:
                lines.pop()
        else:
            lines = [_collapse("".join(parts)) for parts in self.lines]
            lines = [line for line in lines if line]
        self.lines = [[]]
        self.pre_paragraph = False
        paragraph = "\n".join(lines)
        if not paragraph.strip():
            return
        level = self.heading[1] if self.heading is not None else None
        prefix, self.prefix = self.prefix, ""
        self.out.add(paragraph, heading_level=level, prefix=prefix)

    # -- elements
    def enter(self, node: Any, tag: str) -> None:
        if self.heading is not None:  # everything inside a heading is inline text
            if tag in _HTML_BLOCK or tag == "br":
                self.lines[-1].append(" ")
            return
        if tag == "br":
            self.newline()
            return
        if tag in _HTML_HEADINGS:
            self.flush()
            self.heading = (node, _HTML_HEADINGS[tag])
            return
        if tag in _HTML_BLOCK:
            self.flush()
        if tag == "pre":
            self.pre_depth += 1
        elif tag == "ol":
            start = 1
            try:
                start = int((node.attributes.get("start") or "1").strip())
            except (ValueError, AttributeError):
                start = 1
            self.lists.append(["ol", start - 1])
        elif tag in ("ul", "menu"):
            self.lists.append(["ul", 0])
        elif tag == "li":
            indent = "  " * max(0, len(self.lists) - 1)
            if self.lists and self.lists[-1][0] == "ol":
                self.lists[-1][1] += 1
                self.prefix = f"{indent}{self.lists[-1][1]}. "
            else:
                self.prefix = f"{indent}- "
        elif tag == "tr":
            self.rows.append(0)
        elif tag in ("td", "th"):
            if self.rows:
                if self.rows[-1] > 0:
                    self.lines[-1].append(" | ")
                self.rows[-1] += 1
            else:
                self.lines[-1].append(" ")

    def leave(self, node: Any, tag: str) -> None:
        if self.heading is not None:
            if self.heading[0] is node:
                self.flush()
                self.heading = None
            return
        if tag == "pre":
            self.flush()
            self.pre_depth = max(0, self.pre_depth - 1)
            return
        if tag in ("ol", "ul", "menu") and self.lists:
            self.lists.pop()
        elif tag == "tr" and self.rows:
            self.rows.pop()
        if tag in _HTML_BLOCK:
            self.flush()
        if tag == "li":
            self.prefix = ""

    def walk(self, root: Any) -> None:
        stack: list[tuple[Any, bool]] = [(root, False)]
        while stack:
            node, leaving = stack.pop()
            tag = node.tag or ""
            if leaving:
                self.leave(node, tag)
                continue
            if tag == "-text":
                value = node.text_content
                if value:
                    self.text(value)
                continue
            if tag.startswith("-") or tag in self.drop:
                continue
            self.enter(node, tag)
            stack.append((node, True))
            children = list(node.iter(include_text=True))
            stack.extend((child, False) for child in reversed(children))
        self.flush()


def _html_parser(markup: str) -> Any:
    try:
        from selectolax.lexbor import LexborHTMLParser

        return LexborHTMLParser(markup)
    except ImportError:  # pragma: no cover - depends on the selectolax build
        from selectolax.parser import HTMLParser

        return HTMLParser(markup)


# The HTML parser's time grows with the square of the nesting depth (200,000 nested
# <div>s take about a minute), so pathological nesting is refused before parsing.
HTML_MAX_DEPTH: int = 15_000
_HTML_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)")
# Void elements and elements whose end tag may be omitted never build up depth.
_HTML_FLAT = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr", "param", "keygen", "html", "head", "body", "p", "li",
        "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot",
        "colgroup", "caption", "rb", "rt", "rp", "rtc",
    }
)  # fmt: skip


def _check_html_depth(markup: str) -> None:
    """Refuse markup nested deeper than HTML_MAX_DEPTH (an upper estimate, in linear time)."""
    open_tags: dict[str, int] = {}
    depth = 0
    for match in _HTML_TAG.finditer(markup):
        name = match.group(2).lower()
        if name in _HTML_FLAT:
            continue
        if match.group(1):
            if open_tags.get(name):
                open_tags[name] -= 1
                depth -= 1
            continue
        open_tags[name] = open_tags.get(name, 0) + 1
        depth += 1
        if depth > HTML_MAX_DEPTH:
            raise IngestError(f"HTML nested too deeply (more than {HTML_MAX_DEPTH:,} levels)")


def _parse_html(data: bytes, source: str) -> _Parsed:
    markup = _normalize(_decode_text(data, _declared_charset(data)))
    _check_html_depth(markup)
    tree = _html_parser(markup)
    walker = _HtmlWalker()
    attempts = [(sel, _HTML_DROP) for sel in ("main", "article", "body")]
    attempts.append(("body", _HTML_DROP_MINIMAL))
    for selector, drop in attempts:
        root = tree.css_first(selector)
        if root is None:
            continue
        walker = _HtmlWalker(drop)
        walker.walk(root)
        if walker.out.length:
            break
    text = walker.out.text()
    if not text.strip():
        raise IngestError("no text content in the HTML")
    headings = walker.out.headings

    title_node = tree.css_first("head title") or tree.css_first("title")
    title = _collapse(title_node.text()) if title_node is not None else ""
    if not title:
        title = next((h.title for h in headings if h.level == 1), "")
    if not title:
        h1 = tree.css_first("h1")
        title = _collapse(h1.text()) if h1 is not None else ""
    return _Parsed(title or _title_from_name(source), text, headings)


_PARSERS: dict[str, Callable[[bytes, str], _Parsed]] = {
    ".txt": _parse_txt,
    ".md": _parse_markdown,
    ".markdown": _parse_markdown,
    ".pdf": _parse_pdf,
    ".docx": _parse_docx,
    ".html": _parse_html,
    ".htm": _parse_html,
}
