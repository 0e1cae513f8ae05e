"""Terminal output cannot be driven by document content; ``--json`` stays exact.

A document's text, title or file name may hold ESC sequences (set the terminal title,
clear the screen), CR (overwrite the line), BEL, C1 controls, bidi overrides (make a
citation read backwards) or newlines (split a report line). Text output shows each as an
escape (``\\x1b``, ``\\r``, ``\\u202e``); the only raw control character ``tpd-qa`` writes
is the newline ending each of its own lines. Checked on hand-made cases, through real
processes, and by hypothesis fuzzers over file names, passage text and the formatters.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hardening_support import cli_env, run_cli
from tpd_qa.cli import main
from tpd_qa.cli.output import document_lines, json_text, passage_lines, report_lines, visible
from tpd_qa.records import BuildReport, DocumentInfo, FileOutcome, Passage

SRC = Path(__file__).resolve().parents[1] / "src"
BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
PWNED = "\x1b]0;PWNED-TITLE\x07\x1b[2J"
HOSTILE_NAMES = {
    "esc": "a\x1b[31mred\x1b[0m.txt",
    "cr": "b\rcarriage.txt",
    "rlo": "invoice\u202etxt.exe.txt",
    "newline": "c\nsplit  added     fake.txt",
}


def raw_controls(text: str) -> list[str]:
    """Characters a terminal would act on rather than show (the CLI's own newlines aside)."""
    return [
        char
        for char in text
        if char != "\n"
        and (unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in BIDI_CONTROLS)
    ]


def cli(*argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in-process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def body(text: str) -> str:
    return f"Zebrafish research notes.\n\n{text}\n\nMore zebrafish facts follow here.\n"


# ------------------------------------------------------------------ the cases


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A corpus with a terminal-hijacking text and hostile file names; tmp_path/index built."""
    monkeypatch.setenv("TPD_QA_MODEL", "hash")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "pwned.txt").write_text(
        f"{PWNED}Zebrafish title\n\nThe zebrafish facility {PWNED} opened.\n", encoding="utf-8"
    )
    for key, name in HOSTILE_NAMES.items():
        (corpus / name).write_text(body(f"Zebrafish entry {key}."), encoding="utf-8")
    return tmp_path


def test_escape_sequences_in_a_document_do_not_reach_the_terminal(hostile: Path) -> None:
    """A real ``tpd-qa ask``: ESC and BEL arrive as visible text, not as commands."""
    env = cli_env(PYTHONPATH=str(SRC))
    built = run_cli(["index", "--quiet"], env=env, cwd=hostile)
    assert built.returncode == 0, built.stderr
    asked = run_cli(["ask", "zebrafish facility", "-k", "5"], env=env, cwd=hostile)
    assert asked.returncode == 0, asked.stderr
    assert "\x1b" not in asked.stdout and "\x07" not in asked.stdout
    assert raw_controls(asked.stdout) == []
    assert "\\x1b]0;PWNED-TITLE\\x07\\x1b[2J" in asked.stdout
    # --json is exact: the characters come back as they are in the document
    as_json = run_cli(["ask", "zebrafish facility", "--json"], env=env, cwd=hostile)
    assert "\x1b" not in as_json.stdout and "\x07" not in as_json.stdout
    assert any(PWNED in row["text"] for row in json.loads(as_json.stdout))


def test_hostile_file_names_in_index_ask_and_docs(
    hostile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(hostile)
    status, out, _ = cli("index", "--quiet")
    assert status == 0
    assert raw_controls(out) == []
    added = [line for line in out.splitlines() if line.startswith("  added")]
    assert len(added) == len(HOSTILE_NAMES) + 1  # one line each: the newline did not split one
    for shown in ["a\\x1b[31mred\\x1b[0m.txt", "b\\rcarriage.txt", "invoice\\u202etxt.exe.txt"]:
        assert any(shown in line for line in added), shown
    assert any("c\\nsplit  added     fake.txt" in line for line in added)

    status, out, _ = cli("ask", "zebrafish entry", "-k", "10")
    assert status == 0 and raw_controls(out) == []
    assert "invoice\\u202etxt.exe.txt" in out

    status, out, _ = cli("docs")
    assert status == 0 and raw_controls(out) == []
    assert len(out.splitlines()) == len(HOSTILE_NAMES) + 1

    status, out, _ = cli("docs", "--json")
    assert status == 0 and raw_controls(out) == []
    assert {d["source"] for d in json.loads(out)} == {*HOSTILE_NAMES.values(), "pwned.txt"}
    # and a name passed back to --source matches exactly
    status, out, _ = cli("ask", "zebrafish", "--json", "--source", HOSTILE_NAMES["rlo"])
    assert status == 0 and {r["source"] for r in json.loads(out)} == {HOSTILE_NAMES["rlo"]}


def test_skip_reasons_and_errors_are_visible_too(
    hostile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(hostile)
    (hostile / "corpus" / "empty\x1b[2J.txt").write_bytes(b"")
    status, out, _ = cli("index", "--quiet")
    assert status == 3 and raw_controls(out) == []
    assert "empty\\x1b[2J.txt" in out
    status, out, err = cli("ask", "x", "--index", "no\x1b]0;such\x07")
    assert status == 1 and raw_controls(err) == []
    assert "no\\x1b]0;such\\x07" in err


# ------------------------------------------------------------------ fuzzers

UNSAFE = "\x1b\r\n\t\x07\x08\x00\x7f\x85\x9b\u061c\u200e\u200f\u2028\u2029\u202a\u202e\u2066\u2069"
ANY_TEXT = st.text(
    st.one_of(st.characters(codec=None, exclude_categories=()), st.sampled_from(UNSAFE)),
    max_size=120,
)


@settings(max_examples=400, deadline=None)
@given(text=ANY_TEXT)
@example(text=PWNED)
@example(text="\ud800\udfff\udcff")
def test_visible_shows_everything_and_changes_nothing_safe(text: str) -> None:
    shown = visible(text)
    assert raw_controls(shown) == []
    assert visible(shown) == shown
    if not raw_controls(text) and "\n" not in text:
        assert shown == text
    # JSON is exact and terminal-safe (a high and a low lone surrogate side by side are
    # one character to JSON, as to every JSON reader: no file name or text holds them)
    encoded = json_text({"value": text})
    assert raw_controls(encoded) == []
    if not re.search("[\ud800-\udbff][\udc00-\udfff]", text):
        assert json.loads(encoded) == {"value": text}


def test_passage_text_shows_markdown_headings_as_words() -> None:
    text = "## Submarine cables\n\nThe two countries expand cables.\n### Next steps\nMore."
    lines = passage_lines([Passage(text, 0.5, "notes.md", "Notes", None, None, 0, len(text))])
    body = " ".join(line.strip() for line in lines[2:])
    assert "#" not in body
    assert body.startswith("Submarine cables \u2014 The two countries expand cables.")
    assert "Next steps \u2014 More." in body


@settings(max_examples=150, deadline=None)
@given(
    text=ANY_TEXT,
    source=ANY_TEXT,
    title=ANY_TEXT,
    section=st.one_of(st.none(), ANY_TEXT),
    reason=ANY_TEXT,
)
def test_every_text_formatter_is_clean(
    text: str, source: str, title: str, section: str | None, reason: str
) -> None:
    passage = Passage(text or "x", 0.5, source, title, 3, section, 0, 10)
    info = DocumentInfo(source, title, reason, None, 1, 10, "2026-01-01", "0" * 64, (text,))
    report = BuildReport([FileOutcome(source, "skipped", reason), FileOutcome(title, "added")])
    report.full_reason = reason
    lines = [
        *passage_lines([passage], width=60),
        *document_lines([info]),
        *report_lines(report, Path(text or "c"), Path(title or "i")),
    ]
    for line in lines:
        assert raw_controls(line) == [] and "\n" not in line, line


def _file_name_ok(name: str) -> bool:
    try:
        encoded = os.fsencode(name)
    except UnicodeError:
        return False
    return name not in (".", "..") and len(encoded) + 4 <= 255


# Characters a Linux file name may hold: anything but "/" and NUL, including controls,
# bidi controls and undecodable bytes (which Python shows as U+DC80..U+DCFF).
NAME_CHARS = st.one_of(
    st.characters(codec="utf-8", exclude_characters="/\x00"),
    st.sampled_from(UNSAFE.replace("\x00", "") + "\udc80\udcff\udce9"),
)
FILE_NAMES = st.lists(
    st.text(NAME_CHARS, min_size=1, max_size=24).filter(_file_name_ok),
    min_size=1,
    max_size=4,
    unique_by=lambda name: os.fsencode(name + ".txt"),
)
TEXTS = st.text(
    st.one_of(st.characters(codec="utf-8"), st.sampled_from(UNSAFE)), min_size=0, max_size=200
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(names=FILE_NAMES, texts=st.lists(TEXTS, min_size=4, max_size=4))
@example(names=["\x1b]0;t\x07", "\u202eevil", "new\nline", "\udcff\udcfe"], texts=[PWNED] * 4)
@example(names=[".0"], texts=[""] * 4)  # only a hidden file: nothing indexed, nothing found
def test_fuzz_file_names_and_text_through_the_cli(
    names: list[str], texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Index, ask and list a corpus of generated names and texts: no crash, clean output."""
    monkeypatch.setenv("TPD_QA_MODEL", "hash")
    with tempfile.TemporaryDirectory() as folder:
        corpus, index_dir = Path(folder) / "corpus", Path(folder) / "index"
        corpus.mkdir()
        for name, text in zip(names, texts, strict=False):
            (corpus / f"{name}.txt").write_text(body(text), encoding="utf-8")
        status, out, err = cli(
            "index", "--quiet", "--corpus", str(corpus), "--index", str(index_dir)
        )
        assert status in (0, 3), err
        assert raw_controls(out) == [] and raw_controls(err) == []
        status, out, err = cli("ask", "zebrafish", "-k", "8", "--index", str(index_dir))
        assert status == 0, err
        assert raw_controls(out) == []
        if all(name.startswith(".") for name in names):  # hidden files are never indexed
            assert out.startswith("No passages matched")
        else:
            assert out.startswith("[1] ")
        status, listing, err = cli("docs", "--index", str(index_dir))
        assert status == 0 and raw_controls(listing) == []
        status, out, err = cli("docs", "--json", "--index", str(index_dir))
        assert status == 0 and raw_controls(out) == []
        sources = [doc["source"] for doc in json.loads(out)]
        assert len(listing.splitlines()) == len(sources)  # one line per document, always
        for source in sources:  # every listed source selects exactly its document
            # (joined with '=': a name like '-.txt' would otherwise read as an option)
            status, out, err = cli(
                "ask", "zebrafish", "--json", "--index", str(index_dir), f"--source={source}"
            )
            assert status == 0, err
            assert {row["source"] for row in json.loads(out)} == {source}
