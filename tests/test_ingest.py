"""Tests of tpd_qa.ingest: discovery, reading and parsing of every supported format.

All fixtures are generated on the fly (reportlab, python-docx, zipfile) in tmp_path.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import unicodedata
import zipfile
from pathlib import Path

import docx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from documents import docx_bytes, encrypt_pdf, pdf_bytes, scanned_pdf_bytes
from tpd_qa.api import build_index
from tpd_qa.errors import IngestError
from tpd_qa.ingest import (
    DEFAULT_MAX_BYTES,
    SUPPORTED_SUFFIXES,
    Candidate,
    content_hash,
    discover,
    load_document,
    parse,
    read_file,
)
from tpd_qa.ingest import discovery as ingest_discovery
from tpd_qa.ingest import docx as ingest_docx
from tpd_qa.ingest import parsed as ingest_parsed
from tpd_qa.ingest import plaintext as ingest_plaintext
from tpd_qa.ingest import read as ingest_read
from tpd_qa.records import Document

JAPANESE = (
    "日米技術繁栄協定は、人工知能（AI）と半導体の分野での協力を強化するものです。\n"
    "両国は量子技術や次世代通信の研究開発を共同で進めます。\n"
)
LATIN = "Café résumé naïve Zürich: the delegation met at a café in Zürich.\nA naïve résumé.\n"


# ---------------------------------------------------------------------------------------
# helpers


def check_invariants(doc: Document) -> None:
    for heading in doc.headings:
        assert doc.text[heading.start : heading.end] == heading.title
        assert heading.level >= 1
    if doc.page_starts:
        assert doc.page_starts[0] == 0
        assert list(doc.page_starts) == sorted(doc.page_starts)
    assert "\r" not in doc.text
    assert "\x00" not in doc.text


def parse_ok(data: bytes, source: str) -> Document:
    doc = parse(data, source)
    check_invariants(doc)
    assert doc.sha256 == hashlib.sha256(data).hexdigest()
    assert doc.source == source
    return doc


def reason_of(data: bytes, source: str) -> str:
    with pytest.raises(IngestError) as info:
        parse(data, source)
    return info.value.reason


THREE_PAGES = [
    ["Technology Prosperity Deal", "The United States and Japan signed a memorandum."],
    ["2.2 Quantum cooperation", "Both sides will cooperate on quantum computing."],
    ["Final page about semiconductors."],
]


def make_docx() -> bytes:
    document = docx.Document()
    document.add_paragraph("Technology Prosperity Deal", style="Title")
    document.add_heading("1 Overview", level=1)
    document.add_paragraph("The deal covers AI and\tquantum.")
    document.add_paragraph("Energy", style="List Number")
    document.add_paragraph("Quantum", style="List Number")
    document.add_paragraph("Space", style="List Bullet")
    document.add_heading("Details of cooperation", level=2)
    table = document.add_table(rows=2, cols=3)
    for r, row in enumerate([["Area", "Lead", "Year"], ["AI", "NIST", "2025"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("After the table.")
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------
# discover


def test_constants() -> None:
    texts = {".txt", ".md", ".markdown", ".pdf", ".docx", ".html", ".htm"}
    images = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
    assert texts | images == SUPPORTED_SUFFIXES
    assert DEFAULT_MAX_BYTES == 50 * 1024 * 1024


def build_corpus(tmp_path: Path) -> tuple[Path, Path, Path]:
    corpus = tmp_path / "corpus"
    (corpus / "reports" / "deep").mkdir(parents=True)
    (corpus / "a.txt").write_text("alpha")
    (corpus / "reports" / "spec.pdf").write_bytes(b"%PDF-1.4 not really")
    (corpus / "reports" / "deep" / "NOTES.MD").write_text("# Notes")
    (corpus / "data.csv").write_text("a,b")
    (corpus / "README").write_text("no extension")
    (corpus / ".hidden.txt").write_text("secret")
    (corpus / ".git").mkdir()
    (corpus / ".git" / "config.txt").write_text("git")
    (corpus / "__pycache__").mkdir()
    (corpus / "__pycache__" / "x.txt").write_text("cache")
    index = corpus / "index"
    index.mkdir()
    (index / "meta.txt").write_text("index data")
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    (corpus / "reports" / "loop").symlink_to("..", target_is_directory=True)
    (corpus / "escape.txt").symlink_to(outside)
    (corpus / "broken.txt").symlink_to(corpus / "missing.txt")
    (corpus / "alias.txt").symlink_to(corpus / "a.txt")
    return corpus, index, outside


def test_discover_walks_sorted_and_reports_skips(tmp_path: Path) -> None:
    corpus, index, _ = build_corpus(tmp_path)
    found = discover(corpus, exclude=[index])
    by_source = {c.source: c for c in found}
    assert [c.source for c in found] == sorted(by_source)
    assert set(by_source) == {
        "README",
        "a.txt",
        "alias.txt",
        "broken.txt",
        "data.csv",
        "escape.txt",
        "reports/deep/NOTES.MD",
        "reports/loop",
        "reports/spec.pdf",
    }
    for source in ("a.txt", "alias.txt", "reports/spec.pdf", "reports/deep/NOTES.MD"):
        assert by_source[source].skip_reason is None, source
    assert by_source["data.csv"].skip_reason == "unsupported file type .csv"
    assert "unsupported" in (by_source["README"].skip_reason or "")
    assert "not followed" in (by_source["reports/loop"].skip_reason or "")
    assert "outside the corpus" in (by_source["escape.txt"].skip_reason or "")
    assert "broken link" in (by_source["broken.txt"].skip_reason or "")
    for candidate in found:
        assert candidate.path.is_absolute()
        assert candidate.path == corpus / candidate.source


def test_discover_without_exclude_lists_index_and_is_deterministic(tmp_path: Path) -> None:
    corpus, _, _ = build_corpus(tmp_path)
    first = discover(corpus)
    assert "index/meta.txt" in {c.source for c in first}
    assert discover(corpus) == first


def test_discover_reads_no_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, index, _ = build_corpus(tmp_path)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("discover must not open files")

    monkeypatch.setattr("builtins.open", forbidden)
    monkeypatch.setattr(Path, "read_bytes", forbidden)
    assert discover(corpus, exclude=[index])


def test_discover_permission_denied_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, index, _ = build_corpus(tmp_path)
    locked = corpus / "reports" / "deep"
    real_scandir = os.scandir

    def scandir(path: os.PathLike[str] | str) -> object:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(ingest_discovery.os, "scandir", scandir)
    by_source = {c.source: c for c in discover(corpus, exclude=[index])}
    assert by_source["reports/deep"].skip_reason == "cannot read folder: permission denied"
    assert "reports/deep/NOTES.MD" not in by_source
    assert by_source["a.txt"].skip_reason is None


def test_discover_missing_corpus(tmp_path: Path) -> None:
    with pytest.raises(IngestError):
        discover(tmp_path / "nope")


def test_candidate_is_frozen() -> None:
    candidate = Candidate(Path("/x/a.txt"), "a.txt")
    with pytest.raises(AttributeError):
        candidate.source = "b.txt"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------
# read_file / content_hash / load_document


def test_read_file_too_large_message(tmp_path: Path) -> None:
    big = tmp_path / "big.pdf"
    with open(big, "wb") as fh:  # sparse: nothing is written or read
        fh.truncate(105 * 1024 * 1024)
    with pytest.raises(IngestError) as info:
        read_file(big)
    assert info.value.reason == "file too large (105 MB > 50 MB limit)"


def test_read_file_small_limit_and_growth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"x" * 100)
    with pytest.raises(IngestError, match="file too large"):
        read_file(path, max_bytes=10)
    assert read_file(path, max_bytes=100) == b"x" * 100

    # The file "grows" after stat: the read stops at max_bytes + 1 and is refused.
    real_stat = os.stat
    small = os.stat_result((*real_stat(path)[:6], 5, *real_stat(path)[7:]))
    monkeypatch.setattr(ingest_read.os, "stat", lambda p: small)
    with pytest.raises(IngestError, match="file too large"):
        read_file(path, max_bytes=10)


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  "])
def test_read_file_empty(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(IngestError) as info:
        read_file(path)
    assert info.value.reason == "empty file"
    assert reason_of(content, "empty.txt") == "empty file"


def test_read_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(IngestError, match="not found"):
        read_file(tmp_path / "missing.txt")
    with pytest.raises(IngestError, match="not a regular file"):
        read_file(tmp_path)
    path = tmp_path / "locked.txt"
    path.write_text("content")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ingest_read, "open", denied, raising=False)
    with pytest.raises(IngestError) as info:
        read_file(path)
    assert info.value.reason == "cannot read file: permission denied"


def test_content_hash() -> None:
    assert content_hash(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_load_document(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "my_notes-file.txt"
    path.write_text("This sentence is not a title.\nMore text.\n", encoding="utf-8")
    doc = load_document(path, tmp_path)
    assert doc.source == "sub/my_notes-file.txt"
    assert doc.kind == "txt"
    assert doc.title == "My Notes File"
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(IngestError) as info:
        load_document(tmp_path / "empty.txt", tmp_path)
    assert info.value.path == "empty.txt"


# ---------------------------------------------------------------------------------------
# plain text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Hello — world\n".encode(), "Hello — world\n"),
        (codecs.BOM_UTF8 + "Hello — world\n".encode(), "Hello — world\n"),
        ("Hello — world\n".encode("utf-16"), "Hello — world\n"),
        (codecs.BOM_UTF16_BE + "Hello — world\n".encode("utf-16-be"), "Hello — world\n"),
        ("Hello — world\n".encode("utf-32"), "Hello — world\n"),
        (JAPANESE.encode("shift_jis"), JAPANESE),
        (JAPANESE.encode("cp932"), JAPANESE),
        (
            "①覚書の期間は二〇二五年～とする。\n".encode("cp932"),
            "①覚書の期間は二〇二五年～とする。\n",
        ),
        # short EUC-JP is not mistaken for EUC-KR, nor ISO-2022-JP left with its escapes
        ("半導体の供給網を強化する。".encode("euc_jp"), "半導体の供給網を強化する。"),
        ("AIと量子。\n".encode("euc_jp"), "AIと量子。\n"),
        (JAPANESE.encode("euc_jp"), JAPANESE),
        ("覚書は協力を進める。Deal\n".encode("iso2022_jp"), "覚書は協力を進める。Deal\n"),
        (LATIN.encode("latin-1"), LATIN),
        ("“Smart quotes” – cp1252 café\n".encode("cp1252"), "“Smart quotes” – cp1252 café\n"),
    ],
)
def test_txt_decoding(data: bytes, expected: str) -> None:
    doc = parse_ok(data, "notes.txt")
    assert doc.text == expected
    assert doc.kind == "txt"
    assert doc.page_starts == ()
    assert doc.page_at(0) is None


def test_txt_newlines_and_nuls() -> None:
    doc = parse_ok(b"one\r\ntwo\rthree\x00\nfour", "a.txt")
    assert doc.text == "one\ntwo\nthree\nfour"


def test_txt_headings_and_title() -> None:
    text = (
        "U.S.-Japan Technology Prosperity Deal\n"
        "\n"
        "1. Introduction\n"
        "The governments intend to cooperate.\n"
        "\n"
        "2.2 Scope of cooperation\n"
        "Areas include:\n"
        "1. Advancing full-stack cooperation from basic research to applications, "
        "including joint projects and technology exports.\n"
        "2. Promoting secure supply chains for semiconductors and critical minerals.\n"
        "\n"
        "  SCOPE AND DEFINITIONS\n"
        "3.1.4 Quantum\n"
        "2025 was a good year\n"
        "3 apples were eaten\n"
    )
    doc = parse_ok(text.encode(), "deal.txt")
    assert doc.title == "U.S.-Japan Technology Prosperity Deal"
    found = [(h.title, h.level) for h in doc.headings]
    assert found == [
        ("1. Introduction", 1),
        ("2.2 Scope of cooperation", 2),
        ("SCOPE AND DEFINITIONS", 1),
        ("3.1.4 Quantum", 3),
    ]


def test_txt_numbered_list_lines_are_not_headings() -> None:
    text = "Contents\n\n1. Energy\n2. Quantum\n3. Space\n\nBody text follows here.\n"
    doc = parse_ok(text.encode(), "toc.txt")
    assert doc.title == "Contents"
    assert doc.headings == ()


def test_numbered_paragraph_wrapped_onto_the_next_line_is_not_a_heading() -> None:
    # a PDF's wrapped line: "3. Recognizing ... technologies and" / "ensuring ..."
    text = (
        "Memorandum\n\n2. Energy\n\nThe two sides will cooperate.\n\n"
        "3. Recognizing the importance of protecting critical emerging technologies and\n"
        "ensuring secure supply chains, the two sides will act together.\n"
    )
    doc = parse_ok(text.encode(), "memo.txt")
    assert [h.title for h in doc.headings] == ["2. Energy"]


def test_capitals_that_go_on_from_the_line_before_are_not_headings() -> None:
    # the ASN.1 syntax in a PDF manual: "DEFINITIONS ... ::=" / "BEGIN"
    text = (
        "Manual\n\nOVERVIEW\nThe syntax is shown below.\n"
        "Example { 1 2 3 }\nDEFINITIONS EXPLICIT TAGS ::=\nBEGIN\nGroup ::= SEQUENCE {\n"
        "VALUE FIELDS\n}\nEND\n\nREFERENCES\nSee the standard.\n"
    )
    doc = parse_ok(text.encode(), "asn.txt")
    assert [h.title for h in doc.headings] == ["OVERVIEW", "REFERENCES"]


def test_txt_title_falls_back_to_file_name() -> None:
    doc = parse_ok(b"This first line is a whole sentence.\nMore.", "dir/tpd_fact-sheet.txt")
    assert doc.title == "Tpd Fact Sheet"


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        b"PK\x03\x04" + b"zipzip" * 50,
        b"%PDF-1.7\n%binary",
        bytes(200) + b"ABC",
        bytes(range(0, 32)) * 40,
        os.urandom(0) + bytes((i * 7919 + 13) % 256 for i in range(4096)),
    ],
)
def test_txt_binary_is_rejected(data: bytes) -> None:
    assert reason_of(data, "data.txt") == "binary content, not text"
    assert reason_of(data, "data.md") == "binary content, not text"


def test_random_bytes_rejected_for_every_format() -> None:
    data = os.urandom(4096)
    if data.startswith(b"%PDF-"):  # pragma: no cover - astronomically unlikely
        data = b"x" + data
    assert reason_of(data, "a.txt") == "binary content, not text"
    assert reason_of(data, "a.html") == "binary content, not text"
    assert "not a PDF" in reason_of(data, "a.pdf")
    assert "not a DOCX" in reason_of(data, "a.docx")


def test_text_too_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_parsed, "MAX_TEXT_CHARS", 100)
    assert reason_of(b"word " * 50, "long.txt").startswith("text too long")
    assert reason_of(b"<p>" + b"word " * 50 + b"</p>", "long.html").startswith("text too long")


def test_unsupported_suffix_and_unexpected_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert reason_of(b"a,b", "x.csv") == "unsupported file type .csv"

    def boom(data: bytes, source: str) -> None:
        raise ValueError("kaboom")

    monkeypatch.setattr(ingest_plaintext, "parse", boom)
    with pytest.raises(IngestError) as info:
        parse(b"hello", "x.txt")
    assert info.value.reason == "could not parse: ValueError: kaboom"
    assert info.value.path == "x.txt"


# ---------------------------------------------------------------------------------------
# markdown


def test_markdown_headings() -> None:
    text = (
        "Intro paragraph.\n"
        "\n"
        "#  Main Title ##\n"
        "\n"
        "Some text.\n"
        "\n"
        "```python\n"
        "# not a heading\n"
        "```\n"
        "\n"
        "Setext Two\n"
        "----------\n"
        "\n"
        "Setext One\n"
        "==========\n"
        "\n"
        "###### Six\n"
        "#NoSpace is not a heading\n"
        "    # indented code\n"
    )
    doc = parse_ok(text.encode(), "guide.md")
    assert doc.kind == "md"
    assert doc.text == text
    found = [(h.title, h.level) for h in doc.headings]
    assert found == [("Main Title", 1), ("Setext Two", 2), ("Setext One", 1), ("Six", 6)]
    assert doc.title == "Main Title"


def test_markdown_title_fallbacks() -> None:
    assert parse_ok(b"## Second level\ntext", "a.markdown").title == "Second level"
    assert parse_ok(b"just text\n\n---\n\nmore", "release_notes.md").title == "Release Notes"
    assert parse_ok(b"just text\n\n---\n\nmore", "release_notes.md").headings == ()


# ---------------------------------------------------------------------------------------
# PDF


def test_pdf_pages_headings_title() -> None:
    doc = parse_ok(pdf_bytes(THREE_PAGES, title="TPD Memorandum"), "reports/tpd.pdf")
    assert doc.kind == "pdf"
    assert doc.title == "TPD Memorandum"
    assert doc.pages == 3
    assert doc.page_starts[0] == 0
    assert doc.page_at(doc.text.index("memorandum")) == 1
    assert doc.page_at(doc.text.index("quantum computing")) == 2
    assert doc.page_at(doc.text.index("semiconductors")) == 3
    quantum = [h for h in doc.headings if h.title == "2.2 Quantum cooperation"]
    assert len(quantum) == 1
    assert quantum[0].level == 2
    assert doc.page_at(quantum[0].start) == 2
    assert "\n\n" in doc.text


def test_pdf_empty_page_keeps_page_numbers() -> None:
    pages = [["First page text."], [], ["Third page text."]]
    doc = parse_ok(pdf_bytes(pages), "gap.pdf")
    assert doc.pages == 3
    assert doc.page_at(doc.text.index("Third")) == 3


def test_pdf_title_without_or_with_junk_metadata() -> None:
    doc = parse_ok(pdf_bytes(THREE_PAGES, title="Microsoft Word - draft.docx"), "x.pdf")
    assert doc.title == "Technology Prosperity Deal"
    doc = parse_ok(pdf_bytes([["This is only a sentence."]]), "fact_sheet.pdf")
    assert doc.title == "Fact Sheet"


def test_pdf_encrypted() -> None:
    plain = pdf_bytes(THREE_PAGES)
    assert reason_of(encrypt_pdf(plain, "secret"), "locked.pdf") == (
        "encrypted PDF (password required)"
    )
    doc = parse_ok(encrypt_pdf(plain, "", "owner-pass"), "open.pdf")
    assert "Quantum cooperation" in doc.text


def test_pdf_without_text_layer() -> None:
    assert "no text layer" in reason_of(scanned_pdf_bytes(), "scan.pdf")


def test_pdf_magic_and_corruption() -> None:
    assert reason_of(b"hello world", "fake.pdf") == (
        "not a PDF (content does not match the .pdf extension)"
    )
    data = pdf_bytes(THREE_PAGES)
    assert reason_of(data[: len(data) // 3], "truncated.pdf").startswith("corrupt PDF")
    doc = parse_ok(b"\n  " + data, "leading_space.pdf")
    assert "Quantum" in doc.text


def test_pdf_page_extraction_failure_skips_that_page(monkeypatch: pytest.MonkeyPatch) -> None:
    from tpd_qa.ingest import pdf

    real = pdf.page_text

    def flaky(page: object) -> pdf.PageText:
        extracted = real(page)
        if "Quantum" in extracted.text:
            raise ValueError("bad content stream")
        return extracted

    monkeypatch.setattr(pdf, "page_text", flaky)
    doc = parse_ok(pdf_bytes(THREE_PAGES), "flaky.pdf")
    assert doc.pages == 3
    assert "Quantum" not in doc.text
    assert doc.page_at(doc.text.index("semiconductors")) == 3

    monkeypatch.setattr(pdf, "page_text", lambda page: 1 / 0)
    assert reason_of(pdf_bytes(THREE_PAGES), "broken.pdf").startswith("corrupt PDF")


# ---------------------------------------------------------------------------------------
# DOCX


def test_docx_structure() -> None:
    doc = parse_ok(make_docx(), "deal.docx")
    assert doc.kind == "docx"
    assert doc.title == "Technology Prosperity Deal"
    assert doc.text == (
        "Technology Prosperity Deal\n\n"
        "1 Overview\n\n"
        "The deal covers AI and\tquantum.\n\n"
        "1. Energy\n\n"
        "2. Quantum\n\n"
        "- Space\n\n"
        "Details of cooperation\n\n"
        "Area | Lead | Year\n"
        "AI | NIST | 2025\n\n"
        "After the table."
    )
    found = [(h.title, h.level) for h in doc.headings]
    assert found == [
        ("Technology Prosperity Deal", 1),
        ("1 Overview", 1),
        ("Details of cooperation", 2),
    ]


def test_docx_core_title_wins() -> None:
    document = docx.Document()
    document.core_properties.title = "Core Title"
    document.add_heading("A heading", level=1)
    document.add_paragraph("Body.")
    buf = io.BytesIO()
    document.save(buf)
    assert parse_ok(buf.getvalue(), "x.docx").title == "Core Title"


def test_docx_direct_numbering_from_numbering_part() -> None:
    document = docx.Document()

    def numbered(text: str, num_id: int) -> None:
        paragraph = document.add_paragraph(text, style="List Paragraph")
        numpr = paragraph._p.get_or_add_pPr().get_or_add_numPr()
        numpr.get_or_add_ilvl().val = 0
        numpr.get_or_add_numId().val = num_id

    # In python-docx's default template numId 5 is decimal, numId 1 a bullet list.
    numbered("Alpha", 5)
    numbered("Beta", 5)
    numbered("Dot", 1)
    document.add_paragraph("Plain paragraph.")
    buf = io.BytesIO()
    document.save(buf)
    doc = parse_ok(buf.getvalue(), "numbered.docx")
    assert doc.text == "1. Alpha\n\n2. Beta\n\n- Dot\n\nPlain paragraph."
    assert doc.title == "Numbered"


def test_docx_not_a_zip_and_corrupt() -> None:
    assert reason_of(b"plain text", "a.docx") == (
        "not a DOCX (content does not match the .docx extension)"
    )
    assert reason_of(zip_bytes({"hello.txt": b"hi"}), "b.docx").startswith("corrupt DOCX")
    garbage = zip_bytes({"word/document.xml": b"<not xml", "[Content_Types].xml": b"junk"})
    assert reason_of(garbage, "c.docx").startswith("corrupt DOCX")


def test_docx_zip_bomb_real_size() -> None:
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("word/document.xml", "w", force_zip64=True) as member,
    ):
        chunk = bytes(1024 * 1024)
        for _ in range(300):  # ~300 MB of zeros, streamed
            member.write(chunk)
    data = buf.getvalue()
    assert len(data) < 5 * 1024 * 1024
    assert reason_of(data, "bomb.docx") == "suspicious compression (zip bomb?)"


def test_docx_zip_bomb_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_docx, "DOCX_RATIO_MIN_SIZE", 1024)
    data = zip_bytes({"word/document.xml": bytes(512 * 1024)})
    assert reason_of(data, "bomb.docx") == "suspicious compression (zip bomb?)"
    monkeypatch.setattr(ingest_docx, "DOCX_RATIO_MIN_SIZE", 10 * 1024 * 1024)
    monkeypatch.setattr(ingest_docx, "DOCX_MAX_UNCOMPRESSED", 1024)
    assert reason_of(data, "bomb.docx") == "suspicious compression (zip bomb?)"


def many_part_bomb(parts: int) -> bytes:
    """A real, readable DOCX plus ``parts`` media parts of zeros, each just under the size
    from which the compression ratio is checked (so no single part looks like a bomb)."""
    part_size = ingest_docx.DOCX_RATIO_MIN_SIZE - 100 * 1024
    buffer = io.BytesIO(docx_bytes(["A short and harmless paragraph."]))
    block = bytes(1024 * 1024)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for n in range(parts):
            with archive.open(f"word/media/padding{n}.bin", "w") as member:
                left = part_size
                while left:
                    step = min(left, len(block))
                    member.write(block[:step])
                    left -= step
    return buffer.getvalue()


def test_docx_many_parts_bomb_is_bounded_by_the_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The case from the safety issue: 19 parts x 9.9 MB = 188 MB unpacked, compressed small.
    data = many_part_bomb(19)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sizes = [m.file_size for m in archive.infolist() if m.filename.startswith("word/media/")]
    assert len(sizes) == 19 and max(sizes) < ingest_docx.DOCX_RATIO_MIN_SIZE
    assert sum(sizes) > ingest_docx.DOCX_MAX_UNCOMPRESSED
    assert len(data) < 2 * 1024 * 1024

    opened: list[object] = []
    monkeypatch.setattr(docx, "Document", lambda *args: opened.append(args))
    assert reason_of(data, "bomb.docx") == "suspicious compression (zip bomb?)"
    assert not opened, "python-docx must not open the file"

    # Through the whole pipeline the file is skipped with that reason; the rest is indexed.
    monkeypatch.undo()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bomb.docx").write_bytes(data)
    (corpus / "note.txt").write_text("The okapi sanctuary opened in Epulu.\n", encoding="utf-8")
    report = build_index(corpus, tmp_path / "index", model="hash")
    assert [(o.source, o.reason) for o in report.skipped] == [
        ("bomb.docx", "suspicious compression (zip bomb?)")
    ]
    assert [o.source for o in report.by_status("added")] == ["note.txt"]


def test_docx_with_parts_under_the_total_is_read() -> None:
    # The same construction, within the bound: python-docx opens it and the text is kept.
    doc = parse_ok(many_part_bomb(2), "padded.docx")
    assert doc.text == "A short and harmless paragraph."


# ---------------------------------------------------------------------------------------
# HTML

PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>TPD &amp; Partners</title>
<style>.x { color: red }</style><script>var secret = "SCRIPT-CONTENT";</script></head>
<body>
<nav><a href="/">Home NAV-LINK</a></nav>
<header>Site HEADER-TEXT</header>
<main>
<h1>The   Technology
Prosperity Deal</h1>
<p>AI &amp; chips &lt;tags&gt; caf&eacute; &#x65E5;&#x7C73;<script>alert("INLINE-SCRIPT")
</script></p>
<h2>Priorities</h2>
<ol><li>Energy</li><li>Quantum <b>computing</b></li></ol>
<ul><li>Space<ul><li>Moon</li></ul></li></ul>
<table><tr><th>Area</th><th>Lead</th></tr><tr><td>AI</td><td>NIST</td></tr></table>
<p>line one<br>line two</p>
<pre>  keep
    indentation</pre>
<form><input value="FORM-VALUE"><button>BUTTON-TEXT</button></form>
</main>
<aside>ASIDE-TEXT</aside>
<footer>FOOTER-TEXT</footer>
</body></html>"""


def test_html_text_structure_and_title() -> None:
    doc = parse_ok(PAGE, "site/page.html")
    assert doc.kind == "html"
    assert doc.title == "TPD & Partners"
    for junk in ("SCRIPT", "NAV-LINK", "HEADER-TEXT", "FORM", "BUTTON", "ASIDE", "FOOTER"):
        assert junk not in doc.text
    assert "<" not in doc.text.replace("<tags>", "")
    assert "AI & chips <tags> café 日米" in doc.text
    assert "\n\n1. Energy\n\n2. Quantum computing\n\n" in doc.text
    assert "- Space\n\n  - Moon" in doc.text
    assert "Area | Lead\n\nAI | NIST" in doc.text
    assert "line one\nline two" in doc.text
    assert "  keep\n    indentation" in doc.text
    found = [(h.title, h.level) for h in doc.headings]
    assert found == [("The Technology Prosperity Deal", 1), ("Priorities", 2)]


def test_html_root_and_title_fallbacks() -> None:
    html = b"<html><body><nav>menu</nav><article><h1>Only H1</h1><p>x</p></article>"
    html += b"<p>outside article</p></body></html>"
    doc = parse_ok(html, "a.htm")
    assert doc.title == "Only H1"
    assert "outside article" not in doc.text
    doc = parse_ok(b"<p>Just a paragraph.</p>", "plain_page.html")
    assert doc.text == "Just a paragraph."
    assert doc.title == "Plain Page"


def test_html_form_wrapped_page_and_list_prefix_reset() -> None:
    html = b"<body><form><div><p>Everything lives in a form.</p></div></form></body>"
    assert parse_ok(html, "aspnet.html").text == "Everything lives in a form."
    html = b"<ul><li></li></ul><p>Not a list item.</p><ol start='3'><li>three</li></ol>"
    assert parse_ok(html, "x.html").text == "Not a list item.\n\n3. three"


def test_html_documentation_pages_lose_permalinks_and_navigation_landmarks() -> None:
    """What Sphinx writes: a permalink mark in every heading, the sidebar and the
    related-pages bar as ``role="navigation"``, the footer as ``role="contentinfo"``."""
    html = """<body><div class="related" role="navigation"><h3>Navigation</h3>
    <ul><li><a href="index.html">Policy 1.0 documentation</a></li></ul></div>
    <div class="body" role="main"><section id="hooks"><h2><span>3.7. </span>Hooks
    <a class="headerlink" href="#hooks" title="Permalink to this heading">\u00b6</a></h2>
    <p>Hooks run when the default runtime changes; see <a href="#versions">Versions</a>
    and <a href="#x">#</a> note <a href="#n1">[1]</a>.</p>
    <h3 id="v">Versions<a class="anchor" href="#v">#</a></h3><p>Text.</p></section></div>
    <div class="sphinxsidebar" role="navigation"><h3>Quick search</h3></div>
    <div class="footer" role="contentinfo">\u00a9 Copyright 2023.</div></body>"""
    doc = parse_ok(html.encode(), "policy.html")
    assert [(h.title, h.level) for h in doc.headings] == [("3.7. Hooks", 2), ("Versions", 3)]
    for junk in ("\u00b6", "Navigation", "Quick search", "Copyright", "documentation"):
        assert junk not in doc.text
    # a link whose text says something stays; only the bare marks go
    assert "see Versions and note [1]." in doc.text
    # a page built only of landmarks still reads (the second, minimal pass keeps them)
    only = b'<body><div role="navigation"><p>Only a navigation block.</p></div></body>'
    assert parse_ok(only, "menu.html").text == "Only a navigation block."


def test_html_charset_declarations() -> None:
    body = "<html><head><meta charset='shift_jis'></head><body><p>{}</p></body></html>"
    doc = parse_ok(body.format(JAPANESE).encode("shift_jis"), "jp.html")
    assert "日米技術繁栄協定" in doc.text
    latin = '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
    doc = parse_ok((latin + "<p>Café résumé</p>").encode("latin-1"), "fr.html")
    assert doc.text == "Café résumé"
    doc = parse_ok("<p>UTF-16 café</p>".encode("utf-16"), "u16.html")
    assert doc.text == "UTF-16 café"


def test_html_deep_nesting_is_iterative() -> None:
    depth = 10_000
    html = "<html><body>" + "<div>" * depth + "deep text" + "</div>" * depth + "</body></html>"
    doc = parse_ok(html.encode(), "deep.html")
    assert doc.text == "deep text"


# ---------------------------------------------------------------------------------------
# properties

SUSPICIOUS_CATEGORIES = {"Cc", "Co", "Cn", "Cs"}


def has_suspicious(text: str) -> bool:
    return any(
        (unicodedata.category(c) in SUSPICIOUS_CATEGORIES and c not in "\t\n\x0b\x0c\r")
        or c == "\ufffd"
        for c in text
    )


def expected_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def check_roundtrip(text: str, data: bytes) -> None:
    try:
        doc = parse(data, "prop.txt")
    except IngestError as exc:
        if exc.reason == "empty file":
            assert not expected_text(text).strip()
        else:
            assert exc.reason == "binary content, not text"
            assert has_suspicious(text)
        return
    assert doc.text == expected_text(text)
    check_invariants(doc)


# A leading U+FEFF encoded as UTF-8 is indistinguishable from a byte order mark, and
# UTF-16-LE text starting with NUL looks like a UTF-32-LE BOM: both are excluded.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text().filter(lambda t: not t.startswith(("\ufeff", "\x00"))))
def test_property_txt_roundtrip(text: str) -> None:
    check_roundtrip(text, text.encode("utf-8"))
    check_roundtrip(text, text.encode("utf-16"))


@settings(max_examples=100, deadline=None)
@given(
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cc", "Co", "Cn", "Cs"), blacklist_characters="\ufffd\ufeff"
        )
        | st.sampled_from(["\n", "\r", "\x00", "\t", " "])
    )
)
def test_property_clean_text_is_never_binary(text: str) -> None:
    # A few NULs are tolerated (and removed); a text made mostly of NULs is binary. A leading
    # NUL would make the UTF-16-LE BOM look like a UTF-32-LE one.
    text = text.replace("\x00", "") if text.count("\x00") * 10 > len(text) else text
    text = text.lstrip("\x00")
    for data in (text.encode("utf-8"), text.encode("utf-16")):
        try:
            doc = parse(data, "clean.txt")
        except IngestError as exc:
            assert exc.reason == "empty file"
            assert not expected_text(text).strip()
            continue
        assert doc.text == expected_text(text)


@settings(max_examples=60, deadline=None)
@given(
    st.binary(max_size=2048),
    st.sampled_from(sorted(SUPPORTED_SUFFIXES)),
)
def test_property_parse_only_raises_ingest_error(data: bytes, suffix: str) -> None:
    try:
        doc = parse(data, f"fuzz{suffix}")
    except IngestError:
        return
    check_invariants(doc)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "# Title",
                "## Sub",
                "Setext",
                "===",
                "---",
                "```",
                "~~~",
                "text line",
                "2.2 Scope of work",
                "ALL CAPS HEADING",
                "",
                "  ",
                "- item",
                "1. Item",
            ]
        ),
        max_size=30,
    )
)
def test_property_heading_spans(lines: list[str]) -> None:
    data = "\n".join(lines).encode()
    for source in ("p.md", "p.txt"):
        try:
            doc = parse(data, source)
        except IngestError as exc:
            assert exc.reason == "empty file"
            continue
        check_invariants(doc)


# ---------------------------------------------------------------------------------------
# package layout


def _imports(module: str) -> set[str]:
    """Every module that ``tpd_qa/ingest/<module>.py`` imports."""
    import ast

    path = Path(ingest_docx.__file__).with_name(f"{module}.py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_ingest_modules_import_one_way() -> None:
    """formats is the leaf; every module imports only modules listed before it."""
    order = [
        "formats", "parsed", "furniture", "read", "headings", "ocr", "pdfscan",
        "plaintext", "markdown", "pdf", "docx", "html", "image",
        "parser", "discovery",
    ]  # fmt: skip
    assert not [name for name in _imports("formats") if name.startswith("tpd_qa")]
    for position, module in enumerate(order):
        inside = {n.removeprefix("tpd_qa.ingest.") for n in _imports(module) if "ingest." in n}
        assert inside <= set(order[:position]), module
