"""HTML helpers for the web tests: hostile payloads, a tag collector, a passage factory."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from tpd_qa.records import Passage

PAYLOADS = (
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    "[click](javascript:window.__pwned=3)",
    "${window.__pwned=4}",
    "{{constructor.constructor('window.__pwned=5')()}}",
    "&lt;b&gt; &amp; \"quotes\" 'single'",
)


class Collector(HTMLParser):
    """Collects every start tag with its attributes, to check what markup exists."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(markup: str) -> Collector:
    collector = Collector()
    collector.feed(markup)
    collector.close()
    return collector


def strip_marks(markup: str) -> str:
    """Remove only the markup ``highlight`` adds, then unescape: gives back the raw text."""
    bare = re.sub(r'</?mark[^>]*>|<span class="tq-(?:best|hide|head)"[^>]*>|</span>', "", markup)
    return html.unescape(bare)


def passage(text: str, **fields: object) -> Passage:
    values: dict[str, object] = {
        "text": text,
        "score": 0.5,
        "source": "doc.txt",
        "title": "Doc",
        "page": None,
        "section": None,
        "start": 0,
        "end": len(text),
    }
    values.update(fields)
    return Passage(**values)  # type: ignore[arg-type]
