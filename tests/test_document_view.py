"""The web UI's document view (without a browser): PDF page with highlights, text view
with the passage marked, links, notices, escaping."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from documents import make_pdf
from tpd_qa.web import WebApp
from tpd_qa.web.document import parse_request

EVIL = '<img src=x onerror="alert(1)"><script>alert(2)</script> \u202egnp.exe'


@pytest.fixture
def app(corpus: Path, tmp_path: Path) -> WebApp:
    make_pdf(corpus / "report.pdf", ["Shipbuilding yards first.", "Tokamak plasma research."])
    (corpus / "evil.md").write_text(f"# Head {EVIL}\n\nBody text {EVIL} tokamak end.\n")
    web = WebApp(corpus, tmp_path / "index", model="hash")
    web.ensure_index()
    return web


def _link_of(html: str, source: str) -> str:
    for link in re.findall(r'class="tq-open" data-link="([^"]+)"', html):
        link = link.replace("&amp;", "&")
        if parse_qs(urlsplit(link).query)["doc"] == [source]:
            return link
    raise AssertionError(f"no link to {source}")


def test_answer_cards_offer_open_and_copy_link(app: WebApp) -> None:
    html = app.ask("tokamak plasma", 5, "bm25")
    assert "Open in document" in html and "Copy link" in html
    link = _link_of(html, "report.pdf")
    query = parse_qs(urlsplit(link).query)
    assert query["pg"] == ["2"] and len(query["sha"][0]) == 16
    assert "page" not in query  # Gradio's own parameter: ?page=2 is a server error
    view = app.open_document(link)
    assert 'data-kind="pdf"' in view and 'data-page="2"' in view
    assert view.count('class="tq-hl"') >= 1 and "data:image/png;base64," in view
    assert "page 2 of 2" in view
    assert 'class="tq-open tq-prev"' in view and 'tq-next" data-link' in view
    assert re.search(r'class="tq-open tq-next" data-link="[^"]*" disabled', view)


def test_text_view_marks_the_passage_and_escapes_everything(app: WebApp) -> None:
    link = _link_of(app.ask("tokamak body text", 5, "bm25"), "evil.md")
    view = app.open_document(link)
    assert 'id="tq-passage"' in view and '<nav class="tq-outline">' in view
    assert "<script>" not in view and "<img src=x" not in view
    assert "&lt;script&gt;" in view
    for bdi in re.findall(r"<bdi>(.*?)</bdi>", view, re.S):
        assert "<" not in bdi


def test_changed_missing_and_outside_show_notices(app: WebApp, corpus: Path) -> None:
    link = _link_of(app.ask("tokamak plasma", 5, "bm25"), "report.pdf")
    assert "changed since" not in app.open_document(link)
    wrong_sha = re.sub(r"sha=[0-9a-f]+", "sha=0000000000000000", link)
    assert "has changed since it was indexed" in app.open_document(wrong_sha)
    (corpus / "report.pdf").write_bytes((corpus / "report.pdf").read_bytes() + b"\n%x\n")
    view = app.open_document(link)
    assert 'data-state="notice"' in view and "changed since it was indexed" in view
    assert "tq-hl" not in view
    (corpus / "notes.md").write_text("edited")
    assert "changed since" in app.open_document("?doc=notes.md&start=0&end=3")
    assert "not available" in app.open_document("?doc=nope.md&start=0&end=3")
    for hostile in ("../index/manifest.json", "../../etc/passwd", "/etc/passwd", "a/../../x.md"):
        outside = app.open_document({"doc": hostile, "start": "0", "end": "3"})
        assert "does not point to a document in the corpus" in outside, hostile
        assert "tq-hl" not in outside and "root:" not in outside
    assert app.open_document("?start=1") == ""


def test_parse_request_is_forgiving() -> None:
    request = parse_request({"doc": "a.pdf", "start": "x", "end": "-5", "zoom": "9", "pg": "2"})
    assert request is not None
    assert (request.start, request.end, request.page, request.zoom) == (0, 0, 2, 3.0)
    legacy = parse_request({"doc": "a.pdf", "page": "3"})
    assert legacy is not None and legacy.page == 3
