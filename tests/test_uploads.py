"""Tests of tpd_qa.uploads: file names, content sniffing through the format registry,
size limits, and storing without ever replacing a file."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from documents import docx_bytes, make_pdf, pdf_bytes
from tpd_qa import uploads
from tpd_qa.errors import UploadError
from tpd_qa.ingest import FORMATS, SUPPORTED_SUFFIXES, format_for, sniff
from tpd_qa.ingest.formats import FOREIGN_SIGNATURES, Signature
from tpd_qa.limits import MAX_UPLOAD_BYTES


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\notes.md", "notes.md"),
        (".hidden.md", "hidden.md"),
        ("report<script>.PDF", "report_script.pdf"),
        ("CON.txt", "file-CON.txt"),
        ("東京 メモ.md", "東京 メモ.md"),
        ("a\x00b\x1f.txt", "a_b.txt"),
        ("x" * 300 + ".docx", "x" * uploads.MAX_NAME_CHARS + ".docx"),
    ],
)
def test_sanitize_filename(name: str, expected: str) -> None:
    assert uploads.sanitize_filename(name) == expected


@pytest.mark.parametrize("name", ["evil.exe", ".bashrc", "...txt", "noext", "/.md", "a/.."])
def test_sanitize_filename_refuses(name: str) -> None:
    with pytest.raises(UploadError):
        uploads.sanitize_filename(name)


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("a.pdf", b"hello, not a pdf at all", "not a PDF"),
        ("a.txt", b"%PDF-1.7\n%binary", "content is a PDF"),
        ("a.md", b"\x89PNG\r\n\x1a\n0000", "PNG image"),
        ("a.txt", b"text\x00\x00\x00binary", "binary data"),
        ("a.docx", b"plain text", "not a Word .docx"),
        ("a.txt", b"   \n\t ", "empty"),
        ("a.html", b"<html><body><script>x()</script></body></html>", ""),
    ],
)
def test_check_content_refuses_mismatched_content(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(UploadError, match=re.escape(reason) if reason else None):
        uploads.check_content(data, name)


def test_check_content_refuses_a_zip_renamed_docx_and_oversized_files() -> None:
    with pytest.raises(UploadError, match=r"without word/document\.xml"):
        uploads.check_content(_zip_bytes(), "a.docx")
    with pytest.raises(UploadError, match="too large"):
        uploads.check_content(b"x" * 101, "a.txt", max_bytes=100)


def test_check_content_accepts_real_files(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "memo.pdf", ["Fusion energy cooperation between partners."])
    uploads.check_content(pdf.read_bytes(), "memo.pdf")
    uploads.check_content(docx_bytes(["Quantum cooperation."]), "memo.docx")
    uploads.check_content("# Titel\n\nÄrger über Umlaute.".encode(), "memo.md")
    uploads.check_content(b"<html><body><p>Hello</p></body></html>", "memo.html")


def test_store_upload_never_overwrites_and_refuses_duplicates(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.md").write_text("original", encoding="utf-8")
    first = uploads.store_upload(corpus, "../notes.md", b"# New\n\nnew text")
    assert first.name == "notes-2.md" and first.path.parent == corpus
    assert (corpus / "notes.md").read_text(encoding="utf-8") == "original"
    second = uploads.store_upload(corpus, "notes.md", b"# Other\n\nmore text")
    assert second.name == "notes-3.md"
    with pytest.raises(UploadError, match=r"already in the corpus as notes-2\.md"):
        uploads.store_upload(
            corpus, "again.md", b"# New\n\nnew text", known={first.sha256: first.name}
        )
    assert sorted(p.name for p in corpus.iterdir()) == ["notes-2.md", "notes-3.md", "notes.md"]


def test_read_upload_limits_size(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * 2048)
    with pytest.raises(UploadError, match="too large"):
        uploads.read_upload(big, max_bytes=1024)
    assert uploads.read_upload(big, max_bytes=4096) == b"a" * 2048


# ---------------------------------------------------------------------------- registry


def test_uploads_accept_exactly_the_registry_suffixes() -> None:
    assert uploads.SUPPORTED_SUFFIXES == SUPPORTED_SUFFIXES
    assert {s for fmt in FORMATS for s in fmt.suffixes} == SUPPORTED_SUFFIXES
    for suffix in SUPPORTED_SUFFIXES:
        assert uploads.sanitize_filename(f"memo{suffix.upper()}") == f"memo{suffix}"
        fmt = format_for(f"memo{suffix}")
        assert fmt is not None and suffix in fmt.suffixes


def test_upload_limit_comes_from_limits() -> None:
    assert uploads.UPLOAD_MAX_BYTES == MAX_UPLOAD_BYTES


def test_every_format_names_a_parser_module() -> None:
    from tpd_qa.ingest.parser import parser_of

    assert len({fmt.kind for fmt in FORMATS}) == len(FORMATS)
    for fmt in FORMATS:
        assert callable(parser_of(fmt))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (pdf_bytes([["A real PDF."]]), "pdf"),
        (b"junk before the header %PDF-1.4\n", "pdf"),
        (docx_bytes(["A real Word document."]), "docx"),
        (b"PK\x03\x04 broken", "binary:a damaged zip archive"),
        (b"plain text", "text"),
        ("Ärger über Umlaute".encode("utf-16"), "text"),
        (b"text\x00with NUL", "binary:binary data"),
        (b"MZ\x90\x00\x03\x00\x00\x00", "binary:a Windows program"),
        (b"\x1f\x8b\x08\x00\x00\x00", "binary:a gzip archive"),
    ],
)
def test_sniff(data: bytes, expected: str) -> None:
    assert sniff(data) == expected
    assert uploads.sniff(data) == expected


def test_sniff_tells_a_plain_zip_from_a_docx() -> None:
    assert sniff(_zip_bytes()) == "zip"


@pytest.mark.parametrize("signature", FOREIGN_SIGNATURES, ids=lambda s: s.what)
def test_every_foreign_signature_is_refused_as_text(signature: Signature) -> None:
    data = signature.magic + b"\x00\x01\x02 some payload that is not text"
    with pytest.raises(UploadError):
        uploads.check_content(data, "notes.txt")


@pytest.mark.parametrize("suffix", sorted(SUPPORTED_SUFFIXES))
def test_text_cannot_pass_for_a_binary_format_and_back(suffix: str) -> None:
    fmt = format_for(f"a{suffix}")
    assert fmt is not None
    if fmt.is_text:
        with pytest.raises(UploadError, match="the content is a PDF"):
            uploads.check_content(pdf_bytes([["Hidden PDF."]]), f"a{suffix}")
    else:
        label = {"pdf": "PDF", "docx": "Word"}.get(fmt.kind, fmt.label)
        with pytest.raises(UploadError, match=f"not a {label}"):
            uploads.check_content(b"Just some plain words.", f"a{suffix}")
