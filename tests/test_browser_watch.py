"""``tpd-qa serve --watch`` in Chromium: a file copied into the corpus becomes answerable
without pressing anything, and the page says what the watcher did."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    ask,
    open_page,
    running,
    screenshot,
    start_server,
)

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():  # pragma: no cover - scripts/setup.sh test installs it
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

from playwright import sync_api  # noqa: E402

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


def test_a_copied_file_becomes_answerable_without_a_click(watched: Any, tmp_path: Path) -> None:
    assert "watching the corpus" in watched.output()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
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
        finally:
            browser.close()
