"""``tpd-qa serve --watch`` in Chromium: a file copied into the corpus becomes answerable
without pressing anything, and the page says what the watcher did; a scanned memorandum
(an image-only PDF, one page upside down) is read by OCR and cited by page, marked as OCR."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import (
    ROOT,
    ask,
    open_page,
    require_chromium,
    running,
    screenshot,
    start_server,
)
from documents import image_pdf, page_image
from tpd_qa.records import OCR_LABEL

pytestmark = pytest.mark.browser

require_chromium()

MEMO = "us-japan-technology-prosperity-deal.txt"


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("watched")
    corpus = folder / "corpus"
    corpus.mkdir()
    shutil.copy(ROOT / "corpus" / MEMO, corpus / MEMO)
    server = start_server(corpus, folder / "index", folder / "serve.log", model="hash", watch=True)
    with running(server):
        yield server


def test_a_copied_file_becomes_answerable_without_a_click(
    watched: Any, tmp_path: Path, browser: Any
) -> None:
    assert "watching the corpus" in watched.output()
    page = open_page(browser, watched.url, viewport={"width": 1200, "height": 900})
    status = page.locator("#tq-status")
    assert "1 document" in status.inner_text()
    draft = tmp_path / "wombat.txt"
    draft.write_text(
        "Wombat burrow census: the Tasmanian wombat population doubled this decade.",
        encoding="utf-8",
    )
    shutil.copy(draft, watched.corpus / "wombat.txt")
    # the status line refreshes itself: 2 documents, and what the watcher did
    page.wait_for_function(
        "() => /2 documents/.test(document.querySelector('#tq-status').textContent)",
        timeout=60_000,
    )
    assert "1 added" in status.inner_text() or "updated" in status.inner_text()
    screenshot(page, "watch-status")
    results = ask(page, "Tasmanian wombat burrow census")
    first = results.locator("article.tq-card").first
    assert first.get_attribute("data-source") == "wombat.txt"


SCANNED_MEMO = [
    [
        "Memorandum of Cooperation",
        "between the United States and Japan",
        "The participants intend to strengthen cooperation",
        "in artificial intelligence and quantum computing.",
    ],
    [  # scanned upside down
        "Section 2. Fusion Energy",
        "The participants will share cryostat beamline time",
        "at the Naka tokamak for plasma diagnostics.",
        "Results will be published jointly.",
    ],
]


def test_a_scanned_memorandum_becomes_answerable_by_page_with_the_ocr_mark(
    watched: Any, tmp_path: Path, browser: Any
) -> None:
    first, second = SCANNED_MEMO
    scan = tmp_path / "memo-scan.pdf"
    scan.write_bytes(image_pdf([page_image(first), page_image(second, rotate=180)]))
    page = open_page(browser, watched.url, viewport={"width": 1200, "height": 900})
    shutil.copy(scan, watched.corpus / scan.name)
    # Every file of the corpus is a document (the page's first status line may be
    # older than the last rebuild, so count files rather than add one to it).
    expected = sum(path.is_file() for path in watched.corpus.iterdir())
    # no click, no command: the watcher reads both pages by OCR and rebuilds
    page.wait_for_function(
        r"""n => (document.querySelector('#tq-status').textContent
            .match(/(\d+) documents?/) || [])[1] === String(n)""",
        arg=expected,
        timeout=300_000,
    )
    results = ask(page, "Who shares cryostat beamline time at the Naka tokamak?")
    card = results.locator("article.tq-card").first
    assert card.get_attribute("data-source") == scan.name
    meta = card.locator(".tq-meta").inner_text()
    assert "p. 2" in meta.replace("\xa0", " ")
    assert OCR_LABEL in card.locator(".tq-ocr").inner_text()
    assert "Naka tokamak" in card.locator(".tq-text").inner_text()
    citation = card.locator("button.tq-copy").get_attribute("data-copy") or ""
    assert "memo-scan.pdf" in citation and "p. 2" in citation
    assert citation.endswith(OCR_LABEL)
    screenshot(page, "watch-scanned-memo")
