"""Regenerate docs/images/document-view.png, the README's picture of "Open in document".

The memorandum in corpus/ is typeset as a two-page PDF, served with the real model, and
asked which facility will help commercialize fusion; the top answer is opened in its
document and the window photographed (1200x800, reduced to 256 colours to stay small).
Needs Chromium and Playwright, as the browser tests do:

    PYTHONPATH=src .venv/bin/python scripts/screenshot.py [OUT.png]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import simpleSplit
from reportlab.pdfgen import canvas

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_helpers import CHROMIUM, CHROMIUM_ARGS, ask, open_page, running, start_server  # noqa: E402

MEMO = ROOT / "corpus" / "us-japan-technology-prosperity-deal.txt"
OUT = ROOT / "docs" / "images" / "document-view.png"
TITLE = "U.S.–Japan Technology Prosperity Deal"
QUESTION = "Which facility will help commercialize fusion?"
FIRST_PAGE_PARAGRAPHS = 7  # the introduction and items 1-3; items 4-8 go on page 2
# The window: the answer card at the top, then the document view scrolled to its highlight.
FRAME_JS = """() => {
  const card = document.querySelector('#tq-results .tq-summary');
  window.scrollTo(0, window.scrollY + card.getBoundingClientRect().top - 16);
  const view = document.querySelector('#tq-viewer .tq-docview');
  const mark = view.querySelector('.tq-hl').getBoundingClientRect();
  const box = view.getBoundingClientRect();
  view.scrollTop += mark.top - box.top - view.clientHeight / 2;
}"""


def memorandum_pdf(path: Path) -> None:
    """The memorandum typeset on two A4 pages: a title, then justified-width paragraphs."""
    paragraphs = [line for line in MEMO.read_text(encoding="utf-8").splitlines() if line]
    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.setTitle(TITLE)
    width, height = A4
    left, right = 64, width - 64
    for number, chunk in enumerate(
        (paragraphs[:FIRST_PAGE_PARAGRAPHS], paragraphs[FIRST_PAGE_PARAGRAPHS:]), start=1
    ):
        y = height - 72
        if number == 1:
            pdf.setFont("Helvetica-Bold", 17)
            pdf.drawString(left, y, TITLE)
            y -= 34
        for paragraph in chunk:
            for line in simpleSplit(paragraph, "Helvetica", 11, right - left):
                pdf.setFont("Helvetica", 11)
                pdf.drawString(left, y, line)
                y -= 15
            y -= 9
        pdf.setFont("Helvetica", 9)
        pdf.drawCentredString(width / 2, 36, f"{number} / 2")
        pdf.showPage()
    pdf.save()


def main(out: Path = OUT) -> None:
    with tempfile.TemporaryDirectory(prefix="tpd-qa-screenshot-") as tmp:
        folder = Path(tmp)
        corpus = folder / "corpus"
        corpus.mkdir()
        memorandum_pdf(corpus / "technology-prosperity-deal.pdf")
        server = start_server(corpus, folder / "index", folder / "serve.log", model=None)
        with running(server), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = open_page(browser, server.url, viewport={"width": 1200, "height": 800})
            page.locator("#tq-k input[type='number']").fill("1")  # one answer card
            page.locator("#tq-k input[type='number']").press("Tab")
            ask(page, QUESTION)
            page.locator("#tq-results article.tq-card button.tq-open").first.click()
            page.wait_for_selector("#tq-viewer .tq-page .tq-hl")
            page.wait_for_timeout(800)  # the viewer scrolls the highlight into view
            page.evaluate(FRAME_JS)
            page.wait_for_timeout(300)
            shot = folder / "shot.png"
            page.screenshot(path=str(shot))
            browser.close()
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(shot) as image:
            image.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(out, optimize=True)
    print(f"{out} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
