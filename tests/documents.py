"""Small PDF and DOCX files and scans generated for tests (nothing binary is committed)."""

from __future__ import annotations

import io
import subprocess
import textwrap
from pathlib import Path

import docx
import pytest
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas


def pdf_bytes(
    pages: list[list[str]], *, title: str | None = None, wrap: int | None = None
) -> bytes:
    """A PDF with one page per list of strings.

    Without ``wrap`` every string is one text run (one line); with it every string is a
    paragraph, wrapped at ``wrap`` characters, and paragraphs are a little apart.
    """
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    if title is not None:
        pdf.setTitle(title)
    left, leading, gap = (72, 20, 0) if wrap is None else (50, 14, 10)
    for paragraphs in pages:
        y = 750 if wrap is None else 800
        for paragraph in paragraphs:
            for line in [paragraph] if wrap is None else textwrap.wrap(paragraph, wrap):
                pdf.drawString(left, y, line)
                y -= leading
            y -= gap
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_pdf(path: Path, pages: list[str]) -> Path:
    """Write a PDF with one page per string (blank-line separated paragraphs wrapped at
    about 90 characters), titled after the file name."""
    title = path.stem.replace("-", " ").title()
    path.write_bytes(pdf_bytes([page.split("\n\n") for page in pages], title=title, wrap=90))
    return path


def encrypt_pdf(data: bytes, user: str, owner: str | None = None) -> bytes:
    """``data`` encrypted with a user (open) password and optional owner password."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user, owner)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def scanned_pdf_bytes() -> bytes:
    """A one-page PDF with a drawing and no text layer, like a scan without OCR."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.rect(100, 100, 300, 400, fill=1)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def docx_bytes(paragraphs: list[str], *, heading: str | None = None) -> bytes:
    """A DOCX with an optional level-1 heading followed by plain paragraphs."""
    document = docx.Document()
    if heading is not None:
        document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _font(size: int = 30) -> ImageFont.FreeTypeFont:
    found = subprocess.run(
        ["fc-list", ":lang=ja", "file"], capture_output=True, text=True, check=False
    ).stdout.split()
    if not found:
        pytest.fail("no Japanese font: run scripts/setup.sh test (fonts-ipafont-gothic)")
    return ImageFont.truetype(sorted(found)[0].rstrip(":"), size)


def page_image(lines: list[str], *, rotate: int = 0) -> Image.Image:
    """A 'scanned' page: black text on white, turned ``rotate`` degrees anticlockwise."""
    image = Image.new("L", (1275, 825), 255)
    draw = ImageDraw.Draw(image)
    font = _font()
    for number, line in enumerate(lines):
        draw.text((70, 80 + number * 52), line, font=font, fill=0)
    return image.rotate(rotate, expand=True, fillcolor=255) if rotate else image


def image_pdf(pages: list[Image.Image]) -> bytes:
    """An image-only PDF (no text layer), as a scanner writes it."""
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", resolution=300, save_all=True, append_images=pages[1:])
    return buffer.getvalue()
