"""Real-browser tests of "Open in document": a PDF page with its highlight, a copied link
opened in a fresh page, and a document edited after indexing; and of downloading the
answers. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import (
    Server,
    ask,
    open_page,
    require_chromium,
    running,
    screenshot,
    start_server,
)
from documents import make_pdf

pytestmark = pytest.mark.browser
require_chromium()

NOTES = "# Fusion notes\n\n## Naka\n\nThe JT-60SA tokamak in Naka is superconducting.\n"
LEDGER = '=HYPERLINK("http://evil.example","x") <script>window.__pwned=1</script> Quetzal ledger'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("docview")
    corpus = folder / "corpus"
    corpus.mkdir()
    make_pdf(
        corpus / "shipyards.pdf",
        ["Opening page on shipbuilding capacity.", "Zeppelin hangar refits in Nagasaki yards."],
    )
    (corpus / "notes.md").write_text(NOTES, encoding="utf-8")
    (corpus / "ledger.txt").write_text(LEDGER + "\n", encoding="utf-8")
    started = start_server(corpus, folder / "index", folder / "serve.log", model="hash")
    with running(started):
        yield started


def _in_viewport(page: Any, selector: str) -> bool:
    return bool(
        page.evaluate(
            """(selector) => {
                const el = document.querySelector(selector);
                if (!el) return false;
                const r = el.getBoundingClientRect();
                return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight;
            }""",
            selector,
        )
    )


def _open_link(browser: Any, link: str) -> Any:
    """``link`` opened in a new browser context (no shared state), once its highlight shows."""
    page = open_page(browser, link, viewport={"width": 1200, "height": 800})
    page.wait_for_selector("#tq-viewer .tq-hl")
    page.wait_for_timeout(500)  # the viewer scrolls its highlight into view
    return page


def _open_answer(browser: Any, server: Server, question: str, source: str, height: int) -> Any:
    """A page that asked ``question`` and opened the first answer from ``source`` in the
    document view; returns (page, card)."""
    page = open_page(
        browser,
        server.url,
        viewport={"width": 1200, "height": height},
        permissions=["clipboard-read", "clipboard-write"],
    )
    ask(page, question)
    card = page.locator(f"#tq-results article.tq-card[data-source='{source}']").first
    card.locator("button.tq-open").click()
    return page, card


def _copy_link(page: Any, card: Any) -> str:
    """What the card's "Copy link" button puts on the clipboard."""
    card.locator("button.tq-copy-link").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#tq-results button.tq-copy-link')]"
        ".some((b) => b.textContent.includes('Copied'))"
    )
    return str(page.evaluate("navigator.clipboard.readText()"))


def test_open_pdf_answer_copy_link_and_changed_notice(browser: Any, server: Server) -> None:
    page, card = _open_answer(browser, server, "zeppelin hangar Nagasaki", "shipyards.pdf", 900)
    page.wait_for_selector("#tq-viewer .tq-docview[data-kind='pdf'] .tq-page img")
    page.wait_for_function("() => document.querySelector('#tq-viewer .tq-page .tq-hl')")
    page.wait_for_timeout(500)
    assert page.locator("#tq-viewer .tq-docview").get_attribute("data-page") == "2"
    assert _in_viewport(page, "#tq-viewer .tq-page .tq-hl")
    screenshot(page, "docview-pdf", full_page=False)

    link = _copy_link(page, card)
    assert link.startswith(server.url) and "doc=shipyards.pdf" in link
    fresh = _open_link(browser, link)
    assert fresh.locator("#tq-viewer .tq-docview").get_attribute("data-page") == "2"
    assert _in_viewport(fresh, "#tq-viewer .tq-page .tq-hl")
    screenshot(fresh, "docview-pdf-link", full_page=False)
    fresh.context.close()

    pdf = server.corpus / "shipyards.pdf"
    pdf.write_bytes(pdf.read_bytes() + b"\n% edited after indexing\n")
    card.locator("button.tq-open").click()
    page.wait_for_selector("#tq-viewer [data-state='notice']")
    assert "changed since it was indexed" in page.locator("#tq-viewer").inner_text()
    assert page.locator("#tq-viewer .tq-hl").count() == 0
    screenshot(page, "docview-changed", full_page=False)
    page.context.close()


def test_open_markdown_answer_marks_the_passage(browser: Any, server: Server) -> None:
    page, card = _open_answer(browser, server, "JT-60SA tokamak superconducting", "notes.md", 700)
    page.wait_for_selector("#tq-viewer #tq-passage")
    page.wait_for_timeout(500)
    marked = " ".join(page.locator("#tq-viewer mark.tq-hl").all_inner_texts())
    assert "JT-60SA" in marked
    assert page.locator("#tq-viewer nav.tq-outline a").count() == 2
    assert _in_viewport(page, "#tq-viewer #tq-passage")
    screenshot(page, "docview-markdown", full_page=False)

    link = _copy_link(page, card)
    assert "doc=notes.md" in link
    page.context.close()
    fresh = _open_link(browser, link)
    assert fresh.locator("#tq-viewer .tq-docview").get_attribute("data-kind") == "md"
    assert "JT-60SA" in " ".join(fresh.locator("#tq-viewer mark.tq-hl").all_inner_texts())
    assert _in_viewport(fresh, "#tq-viewer #tq-passage")
    fresh.context.close()


def test_a_link_out_of_the_corpus_is_refused(browser: Any, server: Server) -> None:
    page = open_page(browser, server.url + "?doc=../../etc/passwd&start=0&end=40")
    page.wait_for_selector("#tq-viewer [data-state='notice']")
    shown = page.locator("#tq-viewer").inner_text()
    assert "does not point to a document in the corpus" in shown and "root:" not in shown
    page.context.close()


def _download(page: Any) -> tuple[str, str]:
    """Click the download button; the file's suggested name and its text."""
    with page.expect_download() as started:
        page.locator("#tq-download").click()
    download = started.value
    return download.suggested_filename, Path(download.path()).read_text(encoding="utf-8-sig")


def test_download_the_answers_as_markdown_and_csv(browser: Any, server: Server) -> None:
    page = open_page(browser, server.url, viewport={"width": 1200, "height": 800})
    assert page.locator("#tq-download").is_disabled()  # nothing asked yet
    ask(page, "Quetzal ledger")
    page.wait_for_function("() => !document.querySelector('#tq-download').disabled")
    screenshot(page, "download-row", full_page=False)

    name, markdown = _download(page)
    assert name == "tpd-qa-quetzal-ledger.md"
    assert markdown.startswith("# Quetzal ledger\n") and "## 1. ledger\\.txt" in markdown
    assert f"[Open in document](<{server.url}?doc=ledger.txt&start=0&end=" in markdown
    assert "<script>" not in markdown and "&lt;script\\>" in markdown

    page.locator("#tq-download-format").get_by_label("CSV").check()
    page.wait_for_function(
        "() => document.querySelector('#tq-download').textContent.includes('Download CSV')"
    )
    name, table = _download(page)
    assert name == "tpd-qa-quetzal-ledger.csv"
    rows = list(csv.DictReader(io.StringIO(table, newline="")))
    assert rows[0]["source"] == "ledger.txt" and rows[0]["citation"].startswith("ledger.txt")
    assert rows[0]["text"] == "'" + LEDGER  # a spreadsheet shows it, never runs it
    assert rows[0]["link"].startswith(f"{server.url}?doc=ledger.txt&start=0&end=")
    for row in rows:
        assert not any(value.startswith(("=", "+", "-", "@")) for value in row.values())
    assert page.evaluate("window.__pwned") is None
    page.context.close()
