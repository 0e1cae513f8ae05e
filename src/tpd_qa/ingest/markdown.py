"""Markdown (``.md``, ``.markdown``): the source text as it is, with ATX and setext
headings found outside fenced code blocks and front matter."""

from __future__ import annotations

import re

from tpd_qa.ingest.headings import title_from_name
from tpd_qa.ingest.parsed import Parsed, check_length, collapse, normalize
from tpd_qa.ingest.read import decode_text
from tpd_qa.records import Heading
from tpd_qa.text import is_markdown_list_item, line_starts

__all__ = ["markdown_headings", "parse"]

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*")
_ATX_CLOSING = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")


def markdown_headings(text: str) -> list[Heading]:
    """ATX and setext headings outside fenced code blocks and front matter."""
    lines = text.split("\n")
    offsets = line_starts(text)

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
            plain = not line.startswith(("    ", "\t", ">", "|")) and not is_markdown_list_item(
                line
            )
            paragraph_start = i if plain else None
            paragraph_lines = 1
        else:
            paragraph_lines += 1
    return headings


def parse(data: bytes, source: str) -> Parsed:
    text = normalize(decode_text(data))
    check_length(len(text))
    headings = markdown_headings(text)
    title = next((h.title for h in headings if h.level == 1), None)
    if title is None and headings:
        title = headings[0].title
    return Parsed(collapse(title) if title else title_from_name(source), text, headings)
