"""Reading files and decoding text: size and emptiness checks, byte order marks, declared
and detected character sets, refusal of binary content."""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Final

from tpd_qa.errors import IngestError
from tpd_qa.ingest.formats import foreign_signature

__all__ = [
    "BINARY",
    "DEFAULT_MAX_BYTES",
    "EMPTY",
    "content_hash",
    "decode_text",
    "os_reason",
    "read_file",
]

#: Largest file read from a corpus (bytes).
DEFAULT_MAX_BYTES: int = 50 * 1024 * 1024

#: Reasons shared by every format.
BINARY: Final = "binary content, not text"
EMPTY: Final = "empty file"


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
        raise IngestError(f"cannot read file: {os_reason(exc)}", where) from exc
    if not stat.S_ISREG(info.st_mode):
        raise IngestError("not a regular file", where)
    if info.st_size > max_bytes:
        raise IngestError(_too_large(info.st_size, max_bytes), where)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise IngestError(f"cannot read file: {os_reason(exc)}", where) from exc
    if len(data) > max_bytes:
        raise IngestError(_too_large(len(data), max_bytes, grew=True), where)
    if not data.strip():
        raise IngestError(EMPTY, where)
    return data


def content_hash(data: bytes) -> str:
    """SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def os_reason(exc: OSError) -> str:
    """A short lower-case reason for an OS error ("permission denied")."""
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
# decoding

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Control characters (except tab/newline/VT/FF/CR), DEL, C1 controls, private use, U+FFFD.
_SUSPICIOUS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd]")
_BINARY_RATIO = 0.10


def decode_text(data: bytes, declared: str | None = None) -> str:
    """Decode text bytes: BOM, declared charset, ISO-2022-JP, strict UTF-8, CP932 or EUC-JP
    Japanese, detection.

    Raises IngestError for binary data and for text that is empty or only whitespace.
    """
    if foreign_signature(data) is not None:
        raise IngestError(BINARY)
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
        text = _seven_bit_japanese(data)
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _japanese(data, "cp932") or _japanese(data, "euc_jp") or _detect(data)
    if text is None:
        raise IngestError(BINARY)
    if not text.replace("\x00", "").strip():
        raise IngestError(EMPTY)
    if len(_SUSPICIOUS.findall(text)) > _BINARY_RATIO * len(text):
        raise IngestError(BINARY)
    return text


_HIRAGANA = re.compile("[\u3041-\u309f]")
# Punctuation, symbols, kana and kanji, full- and half-width forms: what CP932 encodes
# beyond ASCII except Greek, Cyrillic, a few Latin-1 signs and user-defined characters.
_JAPANESE = re.compile("[\u2010-\u33ff\u3400-\u9fff\uf900-\ufaff\uff01-\uffef]")
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")


#: ISO-2022-JP's switches into JIS X 0208 (1978, 1983) and JIS X 0212: seven-bit mail-era
#: Japanese, which strict UTF-8 would otherwise accept with the escapes left in.
_ISO2022_JP = re.compile(rb"\x1b\$[@B]|\x1b\$\(D")


def _seven_bit_japanese(data: bytes) -> str | None:
    """``data`` as ISO-2022-JP when it switches into a JIS character set, else None."""
    if _ISO2022_JP.search(data) is None:
        return None
    try:
        return data.decode("iso2022_jp_2")
    except UnicodeDecodeError:
        return None


def _japanese(data: bytes, codec: str) -> str | None:
    """``data`` decoded with ``codec`` if that succeeds and reads as Japanese, else None.

    Tried before charset detection, which finds no encoding for short texts with some
    characters and mistakes short EUC-JP for EUC-KR. ``cp932`` is the Shift_JIS that
    Windows writes: it has NEC's circled digits (①) that Python's ``shift_jis`` lacks,
    and maps 0x8160 to ～ (FULLWIDTH TILDE) where ``shift_jis`` gives 〜 (WAVE DASH).
    ``euc_jp`` is the Unix encoding; EUC-JP bytes also decode as CP932, but as half-width
    katakana without hiragana, which the test below rejects, so the order is safe.
    Japanese is plausible when at least one in twenty characters beyond ASCII is hiragana
    (rare in other encodings' misreadings) and nine in ten are Japanese script,
    punctuation or symbols.
    """
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    beyond_ascii = sum(ord(c) > 0x7F for c in text)
    if not beyond_ascii or _CONTROL.search(text):
        return None
    hiragana = len(_HIRAGANA.findall(text))
    japanese = len(_JAPANESE.findall(text))
    if hiragana * 20 < beyond_ascii or japanese * 10 < beyond_ascii * 9:
        return None
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
