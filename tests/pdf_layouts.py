"""A PDF with awkward layouts for highlight tests: several fonts and sizes, two columns,
a rotated page, hyphenated line ends and a paragraph running onto the next page."""

from __future__ import annotations

import io
import random

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas

FONTS = [("Helvetica", 11), ("Times-Roman", 13), ("Courier", 9), ("Helvetica-Bold", 15)]
_WORD_TEXT = (
    "quantum semiconductor alliance supply chain research fusion energy standards "
    "investment cooperation memorandum artificial intelligence biotechnology talent "
    "exchange critical minerals shipbuilding nuclear innovation security"
)
WORDS = _WORD_TEXT.split()


def _lines(rng: random.Random, count: int, font: str, size: float, width: float) -> list[str]:
    """``count`` lines of random words, each narrower than ``width`` points."""
    lines: list[str] = []
    for _ in range(count):
        words: list[str] = []
        while True:
            word = rng.choice(WORDS)
            if stringWidth(" ".join([*words, word, "inter-."]), font, size) > width:
                break
            words.append(word)
        line = " ".join(words)
        if rng.random() < 0.3:  # a word hyphenated across the line end
            line += " inter-"
        lines.append(line.capitalize() + ("." if rng.random() < 0.3 else ""))
    return lines


def layout_pdf(seed: int = 7) -> bytes:
    rng = random.Random(seed)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle("Layout test")
    # page 1: two columns, a different font per paragraph
    for column, left in enumerate((50, 310)):
        y = 800.0
        for paragraph in range(3):
            font, size = FONTS[(paragraph + column) % len(FONTS)]
            pdf.setFont(font, size)
            for line in _lines(rng, 5, font, size, 240):
                pdf.drawString(left, y, line)
                y -= size * 1.4
            y -= size
    pdf.showPage()
    # page 2: rotated (landscape reading), one column
    pdf.setPageRotation(90)
    pdf.setFont("Times-Roman", 12)
    y = 560.0  # reportlab gives the rotated page a landscape media box (842 x 595)
    for line in _lines(rng, 12, "Times-Roman", 12, 700):
        pdf.drawString(60, y, line)
        y -= 17
    pdf.showPage()
    # pages 3 and 4: a paragraph that runs from the foot of one page onto the next
    pdf.setFont("Helvetica", 10)
    y = 120.0
    for line in _lines(rng, 5, "Helvetica", 10, 470):
        pdf.drawString(60, y, line)
        y -= 14
    pdf.showPage()
    pdf.setFont("Helvetica", 10)
    y = 800.0
    for line in _lines(rng, 4, "Helvetica", 10, 470):
        pdf.drawString(60, y, line)
        y -= 14
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
