"""Exported answers (JSON, Markdown, CSV), ``tpd-qa ask --format`` and ``tpd-qa show``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from documents import make_pdf
from tpd_qa import cli
from tpd_qa.cli.output import parse_citation
from tpd_qa.export import csv_cell, export, markdown_text, passage_link
from tpd_qa.records import Passage

HOSTILE = '=HYPERLINK("http://evil") <script>alert(1)</script> [x](javascript:1) *b* \x1b[2J'


def passage(text: str = HOSTILE, **changes: object) -> Passage:
    fields: dict[str, object] = {
        "text": text,
        "score": 0.5,
        "source": "dir/deal.pdf",
        "title": "+cmd|' /C calc'!A0",
        "page": 2,
        "section": "-2+3",
        "start": 10,
        "end": 90,
    }
    fields.update(changes)
    return Passage(**fields)  # type: ignore[arg-type]


def test_csv_neutralises_formulas_and_keeps_numbers() -> None:
    for bad in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\r=1"):
        assert str(csv_cell(bad)).startswith("'")
    assert csv_cell("plain") == "plain" and csv_cell(3) == 3 and csv_cell(-0.5) == -0.5
    table = export([passage(), passage("@risk", start=100, end=120)], "csv")
    rows = list(csv.DictReader(io.StringIO(table)))
    assert len(rows) == 2
    for row in rows:
        for key, value in row.items():
            assert not value.startswith(("=", "+", "-", "@")), (key, value)
    assert rows[0]["text"].startswith("'=HYPERLINK")
    assert rows[0]["title"].startswith("'+cmd") and rows[0]["section"] == "'-2+3"
    assert "\x1b" not in table
    assert rows[1]["text"] == "'@risk" and rows[1]["start"] == "100"


def test_markdown_escapes_document_text() -> None:
    text = export([passage()], "markdown", question="what <b>is</b> it?", links=["?doc=x"])
    assert "<script>" not in text and "<b>" not in text
    assert "&lt;script&gt;" not in text  # '>' is escaped with a backslash, '<' as &lt;
    assert "&lt;script\\>" in text
    assert "\\[x\\]\\(javascript:1\\)" in text and "\\*b\\*" in text
    assert "\x1b" not in text
    assert "[Open in document](<?doc=x>)" in text
    assert markdown_text("a_b # c") == "a\\_b \\# c"


def test_json_export_round_trips() -> None:
    rows = json.loads(export([passage()], "json", links=["L"]))
    assert rows[0]["text"] == HOSTILE and rows[0]["rank"] == 1 and rows[0]["link"] == "L"
    assert rows[0]["citation"] == passage().citation


def test_passage_link_and_citation_parsing() -> None:
    link = passage_link(passage(), "http://h/", sha256="ab" * 32)
    assert link == "http://h/?doc=dir%2Fdeal.pdf&start=10&end=90&pg=2&sha=abababababababab"
    assert parse_citation(passage().citation) == ("dir/deal.pdf", 10, 90)
    assert parse_citation("notes.md") == ("notes.md", None, None)
    assert parse_citation("a · b · chars 3-7") == ("a", 3, 7)


@pytest.fixture
def pdf_workdir(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_pdf(
        corpus / "report.pdf",
        ["Opening page about shipbuilding yards.", "Tokamak plasma research in Naka."],
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TPD_QA_MODEL", "hash")
    assert cli.main(["index", "--quiet"]) == 0
    return tmp_path


def test_ask_formats(pdf_workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    base = ["ask", "tokamak plasma", "-k", "2", "--mode", "bm25"]
    assert cli.main([*base, "--json"]) == 0
    as_alias = capsys.readouterr().out
    assert cli.main([*base, "--format", "json"]) == 0
    assert capsys.readouterr().out == as_alias
    assert cli.main([*base, "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("# tokamak plasma\n") and "## 1. " in markdown
    assert cli.main([*base, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["rank"] for r in rows] == ["1", "2"]
    assert cli.main([*base, "--format", "text"]) == 0
    assert capsys.readouterr().out.startswith("[1] ")
    with pytest.raises(SystemExit) as bad:
        cli.main([*base, "--format", "xml"])
    assert bad.value.code == 2


def test_show_citation_and_page_image(
    pdf_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert cli.main(["ask", "tokamak plasma", "-k", "1", "--json", "--source", "report.pdf"]) == 0
    hit = json.loads(capsys.readouterr().out)[0]
    start = hit["text"].index("Tokamak") + hit["start"]
    citation = f"report.pdf · p. 2 · chars {start}–{start + 14}"
    out_png = pdf_workdir / "page.png"
    assert cli.main(["show", citation, "--context", "10", "--page-image", str(out_png)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"report.pdf · p. 2 · chars {start}–{start + 14}"
    assert ">>>Tokamak plasma<<<" in out
    assert out_png.read_bytes().startswith(b"\x89PNG")
    assert "page 2 written to" in out
    assert any((pdf_workdir / "index" / "page-cache").iterdir())


def test_show_source_with_span_sanitised(
    pdf_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (pdf_workdir / "corpus" / "evil.md").write_text("# T\n\nbefore \x1b]0;pwn\x07 after\u202e x")
    assert cli.main(["index", "--quiet"]) == 0
    capsys.readouterr()
    assert cli.main(["show", "evil.md", "--start", "5", "--end", "11", "--context", "50"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert ">>>before<<<" in out and "\\x1b]0;pwn\\x07" in out and "\\u202e" in out


def test_show_refuses_bad_requests(pdf_workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli.main(["show", "notes.md", "--start", "0", "--end", "999999"]) == 1
    assert "not within" in capsys.readouterr().err
    assert cli.main(["show", "notes.md", "--start", "0"]) == 1
    assert "--end" in capsys.readouterr().err
    assert (
        cli.main(["show", "notes.md", "--start", "0", "--end", "5", "--page-image", "x.png"]) == 1
    )
    assert "needs a PDF" in capsys.readouterr().err
    assert cli.main(["show", "nope.pdf"]) == 1
    assert "no indexed document" in capsys.readouterr().err
    pdf = pdf_workdir / "corpus" / "report.pdf"
    pdf.write_bytes(pdf.read_bytes() + b"\n% edited\n")
    argv = ["show", "report.pdf", "--start", "0", "--end", "5", "--page-image", "x.png"]
    assert cli.main(argv) == 1
    assert "changed since it was indexed" in capsys.readouterr().err
