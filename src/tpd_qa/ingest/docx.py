"""Word documents (``.docx``): paragraphs, numbered and bulleted lists and tables in
document order, heading styles as headings; zip bombs refused before python-docx opens
the file."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any, Final

from tpd_qa.errors import IngestError
from tpd_qa.ingest.headings import title_from_name
from tpd_qa.ingest.parsed import Parsed, TextBuilder, collapse, normalize, short

__all__ = ["DOCX_MAX_RATIO", "DOCX_MAX_UNCOMPRESSED", "DOCX_RATIO_MIN_SIZE", "parse"]

_MIB: Final = 1024 * 1024

# Zip-bomb guards, checked on the zip directory before python-docx opens the file.
#
#: Largest total unpacked size of all parts. python-docx reads every part into memory and
#: lxml builds trees several times the size of the XML parts, so this bounds the memory a
#: file can make us use. 100 MB is twenty bytes of markup for every character of the
#: longest text kept (``MAX_TEXT_CHARS``) plus room for images, more than Word writes; a
#: file of many parts each just under the per-part check below stops here.
DOCX_MAX_UNCOMPRESSED: int = 100 * _MIB
#: Highest compression ratio accepted for a part of at least ``DOCX_RATIO_MIN_SIZE``.
DOCX_MAX_RATIO: float = 200.0
DOCX_RATIO_MIN_SIZE: int = 10 * _MIB

_ZIP_BOMB: Final = "suspicious compression (zip bomb?)"
_MAIN_PART: Final = "word/document.xml"


def _check_zip(data: bytes) -> None:
    """Refuse non-zip data, zip bombs and archives without a main document part."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise IngestError("not a DOCX (content does not match the .docx extension)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise IngestError(f"corrupt DOCX: {short(exc)}") from exc
    total = sum(m.file_size for m in members)
    if total > DOCX_MAX_UNCOMPRESSED:
        raise IngestError(_ZIP_BOMB)
    for member in members:
        if member.file_size > DOCX_RATIO_MIN_SIZE and (
            member.compress_size <= 0 or member.file_size / member.compress_size > DOCX_MAX_RATIO
        ):
            raise IngestError(_ZIP_BOMB)
    if not any(m.filename == _MAIN_PART for m in members):
        raise IngestError(f"corrupt DOCX: {_MAIN_PART} is missing")


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


def parse(data: bytes, source: str) -> Parsed:
    _check_zip(data)
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(f"corrupt DOCX: {short(exc)}") from exc

    try:
        builder, title_paragraph = _docx_text(document, blocks)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(f"corrupt DOCX: {short(exc)}") from exc
    text = builder.text()
    try:
        core_title = collapse(document.core_properties.title or "")
    except Exception:
        core_title = ""
    title = (
        core_title
        or title_paragraph
        or (builder.headings[0].title if builder.headings else None)
        or title_from_name(source)
    )
    return Parsed(title, text, builder.headings)


def _docx_text(document: Any, blocks: list[Any]) -> tuple[TextBuilder, str | None]:
    """Paragraphs, lists and tables in document order; also the Title-style paragraph."""
    from docx.table import Table

    formats = _numbering_formats(document)
    builder = TextBuilder()
    style_counters: dict[int, int] = {}
    num_counters: dict[str, list[int]] = {}
    title_paragraph: str | None = None

    for block in blocks:
        if isinstance(block, Table):
            style_counters.clear()
            builder.add(_docx_table(block))
            continue
        raw = normalize(block.text)
        try:
            style = block.style.name if block.style is not None else ""
        except Exception:
            style = ""
        style = style or ""
        heading = _DOCX_HEADING.fullmatch(style)
        if style.lower() == "title" or heading:
            style_counters.clear()
            level = int(heading.group(1)) if heading else 1
            text = collapse(raw)
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
            cells.append(collapse(normalize(cell.text)))
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)
