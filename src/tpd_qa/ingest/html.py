"""HTML (``.html``, ``.htm``): readable text of the main content (navigation, scripts,
forms and headings' permalink marks dropped), ``<h1>``–``<h6>`` as headings, lists and
tables kept as lines."""

from __future__ import annotations

import codecs
import re
from typing import Any

from tpd_qa.errors import IngestError
from tpd_qa.ingest.headings import title_from_name
from tpd_qa.ingest.parsed import Parsed, TextBuilder, collapse, normalize
from tpd_qa.ingest.read import decode_text

__all__ = ["HTML_MAX_DEPTH", "parse"]

_HTML_DROP = frozenset(
    {
        "script", "style", "noscript", "template", "nav", "header", "footer", "aside",
        "form", "iframe", "svg", "button", "select", "head", "object", "embed", "canvas",
        "math", "textarea",
    }
)  # fmt: skip
#: ARIA landmark roles that mean the same as the dropped tags (Sphinx marks its sidebar
#: and related-pages bars ``<div role="navigation">``, its footer ``role="contentinfo"``).
_HTML_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search"})
#: What a heading's permalink anchor shows (Sphinx and MkDocs ``¶``, others ``#``, ``§``).
_PERMALINK_MARKS = frozenset({"", "\u00b6", "#", "\u00a7", "\U0001f517"})
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
        self.out = TextBuilder()
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
            lines = [collapse("".join(parts)) for parts in self.lines]
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

    def _furniture(self, node: Any, tag: str) -> bool:
        """A navigation landmark (when navigation is dropped) or a heading's permalink."""
        attributes = node.attributes
        role = (attributes.get("role") or "").strip().lower()
        if "nav" in self.drop and role in _HTML_DROP_ROLES:
            return True
        if tag != "a" or not (attributes.get("href") or "").startswith("#"):
            return False
        return collapse(node.text(deep=True)) in _PERMALINK_MARKS

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
            if tag.startswith("-") or tag in self.drop or self._furniture(node, tag):
                continue
            self.enter(node, tag)
            stack.append((node, True))
            children = list(node.iter(include_text=True))
            stack.extend((child, False) for child in reversed(children))
        self.flush()


def _html_parser(markup: str) -> Any:
    # Every selectolax since 0.3 has the lexbor engine (1.0 removed the old one).
    from selectolax.lexbor import LexborHTMLParser

    return LexborHTMLParser(markup)


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


def parse(data: bytes, source: str) -> Parsed:
    markup = normalize(decode_text(data, _declared_charset(data)))
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
    title = collapse(title_node.text()) if title_node is not None else ""
    if not title:
        title = next((h.title for h in headings if h.level == 1), "")
    if not title:
        h1 = tree.css_first("h1")
        title = collapse(h1.text()) if h1 is not None else ""
    return Parsed(title or title_from_name(source), text, headings)
