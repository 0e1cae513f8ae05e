"""Highlights on PDF originals: the boxes cover exactly the indexed span's characters."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from documents import pdf_bytes
from pdf_layouts import layout_pdf
from tpd_qa.errors import SourceError
from tpd_qa.ingest import parse
from tpd_qa.ingest.pdf import open_pdf, page_text
from tpd_qa.pages import Box, PageCache, highlight_boxes, render, source_path
from tpd_qa.records import Document


@cache
def _layout(folder: str) -> tuple[Path, Document]:
    path = Path(folder) / "layout.pdf"
    data = layout_pdf()
    path.write_bytes(data)
    return path, parse(data, "layout.pdf")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Document]:
    return _layout(str(tmp_path_factory.mktemp("layout")))


def _truth(path: Path, document: Document, start: int, end: int) -> dict[int, tuple[list, list]]:
    """Per page: PDFium's tight boxes of the span's visible characters, and of the others."""
    pdf = open_pdf(path.read_bytes())
    result: dict[int, tuple[list, list]] = {}
    for number, first in enumerate(document.page_starts, start=1):
        extracted = page_text(pdf[number - 1])
        textpage = pdf[number - 1].get_textpage()
        inside, outside = [], []
        for i, ch in enumerate(extracted.text):
            if ch.isspace():
                continue
            box = textpage.get_charbox(extracted.chars[i])
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            (inside if start <= first + i < end else outside).append(box)
        result[number] = (inside, outside)
    return result


def _check(boxes: list[Box], truth: dict[int, tuple[list, list]]) -> None:
    for page, (inside, outside) in truth.items():
        on_page = [b for b in boxes if b.page == page]
        for x0, y0, x1, y1 in inside:  # every character of the span is covered...
            assert any(
                b.x0 - 0.01 <= x0 and x1 <= b.x1 + 0.01 and b.y0 - 0.01 <= y0 and y1 <= b.y1 + 0.01
                for b in on_page
            ), (page, (x0, y0, x1, y1))
        for x0, y0, x1, y1 in outside:  # ...and no character outside it is
            centre = ((x0 + x1) / 2, (y0 + y1) / 2)
            assert not any(b.contains(*centre) for b in on_page), (page, (x0, y0, x1, y1))


def test_layout_has_columns_fonts_rotation_and_a_page_break(layout: tuple[Path, Document]) -> None:
    path, document = layout
    assert document.pages == 4
    pdf = open_pdf(path.read_bytes())
    assert pdf[1].get_rotation() == 90
    assert "inter-\n" in document.text


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_boxes_cover_the_span_and_nothing_else(
    layout: tuple[Path, Document], data: st.DataObject
) -> None:
    path, document = layout
    n = len(document.text)
    start = data.draw(st.integers(0, n - 1), label="start")
    end = data.draw(st.integers(start + 1, min(n, start + 900)), label="end")
    boxes = highlight_boxes(path, document, start, end)
    _check(boxes, _truth(path, document, start, end))


def test_passage_across_a_page_break_highlights_both_pages(
    layout: tuple[Path, Document],
) -> None:
    path, document = layout
    third, fourth = document.page_starts[2], document.page_starts[3]
    start, end = fourth - 60, fourth + 40
    assert start > third
    boxes = highlight_boxes(path, document, start, end)
    assert {b.page for b in boxes} == {3, 4}
    _check(boxes, _truth(path, document, start, end))


def test_two_column_lines_merge_per_line(layout: tuple[Path, Document]) -> None:
    path, document = layout
    first_line_end = document.text.index("\n")
    boxes = highlight_boxes(path, document, 0, first_line_end)
    assert len(boxes) == 1 and boxes[0].x1 < 300  # the left column only
    two_lines = highlight_boxes(path, document, 0, document.text.index("\n", first_line_end + 1))
    assert len(two_lines) == 2


def _write(tmp_path: Path, data: bytes, name: str = "doc.pdf") -> tuple[Path, Document]:
    path = tmp_path / name
    path.write_bytes(data)
    return path, parse(data, name)


def test_changed_and_missing_originals_are_refused(tmp_path: Path) -> None:
    path, document = _write(tmp_path, pdf_bytes([["Original sentence here."]]))
    path.write_bytes(pdf_bytes([["Edited sentence here!"]]))
    with pytest.raises(SourceError) as changed:
        highlight_boxes(path, document, 0, 8)
    assert changed.value.reason == "changed"
    path.unlink()
    with pytest.raises(SourceError) as missing:
        render(path, document, 1, [(0, 8)])
    assert missing.value.reason == "missing"


def test_source_path_stays_inside_the_corpus(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    assert source_path(tmp_path / "c", "a/b.pdf") == (tmp_path / "c" / "a" / "b.pdf").resolve()
    for bad in ("../secret.pdf", "/etc/passwd", "a/../../x", ""):
        with pytest.raises(SourceError) as refused:
            source_path(tmp_path / "c", bad)
        assert refused.value.reason == "outside"


def test_render_draws_the_highlight_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    path, document = _write(tmp_path, pdf_bytes([["Alpha beta gamma.", "Delta epsilon."]]))
    start = document.text.index("beta")
    cache = PageCache(tmp_path / "page-cache")
    image = render(path, document, 1, [(start, start + 4)], scale=1.0, cache=cache)
    assert image.png.startswith(b"\x89PNG")
    picture = Image.open(__import__("io").BytesIO(image.png)).convert("RGB")
    assert picture.size == (image.width, image.height) == (596, 842)
    (left, top, right, bottom) = image.rects[0]
    assert 72 < left < right < 200 and 75 < top < bottom < 100  # "beta" on the first line
    inside = picture.getpixel(((left + right) // 2, top + 2))
    assert inside[2] < 200 and inside[0] > 200  # yellowish, not white
    plain = render(path, document, 1, scale=1.0, cache=cache)
    assert plain.rects == () and plain.png != image.png
    import tpd_qa.pages as pages

    monkeypatch.setattr(pages, "open_pdf", lambda data: 1 / 0)  # a cache hit opens nothing
    again = render(path, document, 1, [(start, start + 4)], scale=1.0, cache=cache)
    assert again == image
    with pytest.raises(ValueError):
        render(path, document, 1, scale=40)
    with pytest.raises(SourceError):
        render(path, document, 2)


def test_rotated_page_renders_landscape_with_the_highlight_inside(
    layout: tuple[Path, Document],
) -> None:
    path, document = layout
    start = document.page_starts[1]
    image = render(path, document, 2, [(start, start + 30)], scale=1.0)
    assert (image.width, image.height) == (596, 842)  # the 842 x 595 box turned upright
    assert len(image.rects) == 1
    left, top, right, bottom = image.rects[0]
    assert 0 <= left < right <= image.width and 0 <= top < bottom <= image.height
    assert bottom - top > right - left  # the line runs down the rotated image


def test_public_api_highlights_a_retrieved_pdf_passage(tmp_path: Path) -> None:
    import tpd_qa
    from documents import make_pdf

    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    make_pdf(corpus / "deal.pdf", ["Shipbuilding yards first.", "Tokamak plasma research."])
    (corpus / "secret.txt").write_text("not for links")
    tpd_qa.build_index(corpus, index_dir, model="hash")
    hit = tpd_qa.retrieve("tokamak plasma", k=1, index_dir=index_dir, mode="bm25")[0]
    assert hit.source == "deal.pdf" and hit.page == 2
    boxes = tpd_qa.highlight_boxes(hit, corpus_dir=corpus, index_dir=index_dir)
    assert boxes and {b.page for b in boxes} == {2}
    png = tpd_qa.render_page(
        hit.source, 2, [(hit.start, hit.end)], corpus_dir=corpus, index_dir=index_dir
    )
    assert png.startswith(b"\x89PNG")
    assert any((index_dir / "page-cache").glob("*.png"))
    for bad, reason in (("../index/manifest.json", "outside"), ("secret.pdf", "missing")):
        with pytest.raises(SourceError) as refused:
            tpd_qa.render_page(bad, 1, corpus_dir=corpus, index_dir=index_dir)
        assert refused.value.reason == reason
    tpd_qa.build_index(corpus, index_dir, model="hash")  # the page cache survives a save
    assert any((index_dir / "page-cache").glob("*.png"))
