"""Plain text (``.txt``): decoded text, line headings, the first line as title."""

from __future__ import annotations

from tpd_qa.ingest.headings import first_line_title, line_headings, title_from_name
from tpd_qa.ingest.parsed import Parsed, check_length, normalize
from tpd_qa.ingest.read import decode_text

__all__ = ["parse"]


def parse(data: bytes, source: str) -> Parsed:
    text = normalize(decode_text(data))
    check_length(len(text))
    title = first_line_title(text) or title_from_name(source)
    return Parsed(title, text, line_headings(text))
