"""Running headers, running footers and page numbers leave a PDF's indexed text."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from documents import pdf_bytes
from tpd_qa.chunking import Chunker
from tpd_qa.ingest import parse
from tpd_qa.ingest.furniture import EDGE_LINES, match, strip_furniture
from tpd_qa.ingest.parsed import PageText
from tpd_qa.ingest.pdf import PAGE_RUN_ON, PAGE_SEPARATOR
from tpd_qa.pages import highlight_boxes
from tpd_qa.text import sentence_spans

TITLE = "Quantum Cooperation Review"
BODY = [
    ["1 Scope", "This review covers joint quantum research between the two countries."],
    ["Laboratories exchange researchers for terms of up to 12 months.", "Funding is shared."],
    ["2 Methods", "Each partner names a liaison office that reports every 6 months."],
    ["Chapter summaries follow the order of the memorandum,", "item by item."],
    ["3 Outlook", "The partners expect a second phase to begin in 2027."],
]


def _review_pdf() -> bytes:
    """Five pages: a running title on top, then (after the first page) the printed page
    number over each chapter heading or a 'Chapter N' running head, and 'Page N of 5' at
    the foot."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for number, lines in enumerate(BODY, start=1):
        pdf.drawString(72, 800, TITLE)
        y = 770
        if number == 1:
            pass
        elif number % 2:  # chapter pages: the bare number above the heading
            pdf.drawString(72, 785, str(number))
        else:
            pdf.drawString(72, 785, f"Chapter {number // 2}: Findings {number}")
        for line in lines:
            pdf.drawString(72, y, line)
            y -= 20
        pdf.drawString(260, 40, f"Page {number} of {len(BODY)}")
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _pages(document_text: str, starts: tuple[int, ...]) -> list[str]:
    ends = [s - 2 for s in starts[1:]] + [len(document_text)]
    return [document_text[s:e] for s, e in zip(starts, ends, strict=True)]


def test_headers_footers_and_page_numbers_leave_the_text() -> None:
    document = parse(_review_pdf(), "review.pdf")
    pages = _pages(document.text, document.page_starts)
    assert pages[0].startswith(TITLE + "\n1 Scope")  # the title stays on the first page
    assert document.text.count(TITLE) == 1
    assert "Page " not in document.text and "Chapter 1: Findings" not in document.text
    assert pages[1].startswith("Laboratories exchange researchers for terms of up to 12 months.")
    # headings under a page number stay, and so do numbers inside the body
    assert pages[2].startswith("2 Methods\n") and pages[4].startswith("3 Outlook\n")
    assert "every 6 months." in pages[2] and "begin in 2027." in pages[4]
    assert [h.title for h in document.headings][:3] == ["1 Scope", "2 Methods", "3 Outlook"]


def test_highlight_finds_the_characters_of_a_page_that_lost_its_furniture(
    tmp_path: Path,
) -> None:
    path = tmp_path / "review.pdf"
    path.write_bytes(_review_pdf())
    document = parse(path.read_bytes(), "review.pdf")
    start = document.text.index("Each partner names")
    end = start + len("Each partner names a liaison office")
    boxes = highlight_boxes(path, document, start, end)
    assert boxes and {b.page for b in boxes} == {3}
    assert all(b.y0 > 720 and b.y1 < 790 for b in boxes)  # the body line, not a header


def test_short_documents_and_unnumbered_pages_keep_every_line() -> None:
    two = [PageText(f"Header\nbody {n}\n{n}", tuple(range(9 + 2 * len(str(n))))) for n in (1, 2)]
    assert strip_furniture(two) == two
    varied = [PageText(f"line {n} of the body\nmore {n}", tuple(range(25))) for n in (5, 9, 4)]
    assert strip_furniture(varied) == varied


_LINES = st.sampled_from(
    [
        "Running Title",
        "Chapter 2: Methods 7",
        "7",
        "Page 3",
        "- 4 -",
        "",
        "body text 12",
        "12 apples",
        "x",
        "A heading",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_LINES, min_size=0, max_size=6), min_size=0, max_size=8))
def test_only_edge_lines_go_and_highlights_can_find_what_stays(pages: list[list[str]]) -> None:
    originals = []
    for lines in pages:
        text = "\n".join(lines).lstrip("\n").rstrip()
        originals.append(PageText(text, tuple(range(100, 100 + len(text)))))
    for original, kept in zip(originals, strip_furniture(originals), strict=True):
        assert len(kept.chars) == len(kept.text)
        assert not kept.text.startswith("\n") and kept.text == kept.text.rstrip()
        found = match(original, kept.text)
        assert found is not None and found.text == kept.text
        # the characters of whole lines of the page, with their PDFium indices
        assert not found.chars or (
            found.chars == tuple(range(found.chars[0], found.chars[0] + len(found.chars)))
        )
        if len(set(original.text.split("\n"))) == len(original.text.split("\n")):
            assert found == kept  # no repeated line: exactly the characters indexed

        def written(text: str) -> int:
            return sum(1 for line in text.split("\n") if line.strip())

        assert written(original.text) - written(kept.text) <= 2 * EDGE_LINES


def test_a_sentence_running_on_to_the_next_page_stays_whole() -> None:
    data = pdf_bytes(
        [
            ["Results", "The partners agree that information found in a"],
            ["shared directory is added to the common register.", "Next topic."],
            ["A closing remark ends here."],
            ["lower case after a full stop starts a new paragraph."],
        ]
    )
    document = parse(data, "runon.pdf")
    second, third, fourth = document.page_starts[1:]
    assert len(PAGE_RUN_ON) == len(PAGE_SEPARATOR)
    assert document.text[second - 2 : second] == PAGE_RUN_ON
    assert document.text[third - 2 : third] == document.text[fourth - 2 : fourth] == "\n\n"
    assert document.page_at(second) == 2 and document.text[second:].startswith("shared")
    sentence = "The partners agree that information found in a \nshared directory is added"
    spans = [document.text[a:b] for a, b in sentence_spans(document.text, 0, len(document.text))]
    assert any(sentence in span for span in spans)
    chunks = Chunker().chunk(document)
    assert any(sentence in chunk.text for chunk in chunks)
