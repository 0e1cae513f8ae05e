"""Tests of the ``tpd-qa`` command line, in-process (``cli.main``) and as ``python -m tpd_qa``.

All use the hashing embedder (TPD_QA_MODEL=hash), so no model is loaded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tpd_qa import cli
from tpd_qa.index import index_lock, read_manifest

SEED_NAME = "us-japan-technology-prosperity-deal.txt"
PASSAGE_KEYS = {
    "rank",
    "text",
    "score",
    "source",
    "title",
    "page",
    "section",
    "start",
    "end",
    "answer_start",
    "answer_end",
    "ocr",
    "ocr_confidence",
    "citation",
}
SUBCOMMANDS = ["index", "ask", "docs", "show", "serve", "watch", "eval"]


@pytest.fixture
def workdir(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = tmp_path holding ./corpus; the hashing model configured."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TPD_QA_MODEL", "hash")
    return tmp_path


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TPD_QA_")}
    environment.update({"TPD_QA_MODEL": "hash", "HF_HUB_OFFLINE": "1"})
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tpd_qa", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_error_line(stderr: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("tpd-qa: error:"), stderr
    assert "Traceback" not in stderr


# ---------------------------------------------------------------------------------------
# help and usage


@pytest.mark.parametrize("command", [[], *([c] for c in SUBCOMMANDS)])
def test_help_for_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tpd-qa")
    if command:
        assert command[0] in out.splitlines()[0]


def test_help_lists_subcommands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in out
    assert "3" in out and "skipped" in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["ask"],
        ["ask", "q", "-k", "0"],
        ["ask", "q", "-k", "-3"],
        ["ask", "q", "-k", "many"],
        ["ask", "q", "--mode", "fuzzy"],
        ["index", "--bogus"],
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == cli.ExitStatus.USAGE == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_error_line(captured.err)


def test_k_zero_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["ask", "q", "-k", "0"])
    err = capsys.readouterr().err
    assert "-k" in err and "at least 1" in err


# ---------------------------------------------------------------------------------------
# index


def test_index_prints_summary(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["index", "--quiet"]) == cli.ExitStatus.OK
    out = capsys.readouterr().out
    assert "Full rebuild" in out and "no previous index" in out
    assert re.search(r"\(\d+ embedded now, \d+ sentences\)", out)
    assert f"added     {SEED_NAME}" in out
    assert "3 added" in out and "0 skipped" in out
    assert (workdir / "index" / "manifest.json").is_file()
    # second run: nothing to do, unchanged files are counted but not listed
    assert cli.main(["index"]) == cli.ExitStatus.OK
    out = capsys.readouterr().out
    assert "Incremental update" in out
    assert "3 unchanged" in out and "0 embedded now" in out
    assert SEED_NAME not in out
    # a change, a removal, a rename
    (workdir / "corpus" / "notes.md").write_text(
        "# Notes\n\nNew text on Artemis.\n", encoding="utf-8"
    )
    (workdir / "corpus" / "sub" / "semis.txt").rename(workdir / "corpus" / "chips.txt")
    (workdir / "corpus" / SEED_NAME).unlink()
    assert cli.main(["index"]) == cli.ExitStatus.OK
    out = capsys.readouterr().out
    assert "changed   notes.md" in out
    assert "renamed   chips.txt" in out and "was sub/semis.txt" in out
    assert f"removed   {SEED_NAME}" in out
    assert "1 changed, 1 renamed, 1 removed" in out


def test_index_reports_skips_with_exit_3(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "corpus" / "empty.txt").write_bytes(b"")
    (workdir / "corpus" / "fake.pdf").write_bytes(os.urandom(2048))
    (workdir / "corpus" / "data.csv").write_text("a,b\n", encoding="utf-8")
    assert cli.main(["index"]) == cli.ExitStatus.SKIPPED == 3
    out = capsys.readouterr().out
    skipped = [line for line in out.splitlines() if line.strip().startswith("skipped")]
    assert len(skipped) == 3
    for line in skipped:
        assert " - " in line  # every skipped file has its reason
    assert any("empty.txt" in line and "empty" in line.split(" - ", 1)[1] for line in skipped)
    assert any("data.csv" in line and ".csv" in line.split(" - ", 1)[1] for line in skipped)
    assert "3 skipped" in out
    # the other files were indexed all the same
    assert len(read_manifest(workdir / "index")["documents"]) == 3


def test_index_json(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "corpus" / "empty.txt").write_bytes(b"")
    assert cli.main(["index", "--json"]) == cli.ExitStatus.SKIPPED
    report = json.loads(capsys.readouterr().out)
    assert report["full"] is True
    assert report["counts"]["added"] == 3 and report["counts"]["skipped"] == 1
    files = {f["source"]: f for f in report["files"]}
    assert files["empty.txt"]["status"] == "skipped" and files["empty.txt"]["reason"]
    assert report["chunks"] == report["embedded_chunks"] > 0
    assert set(files[SEED_NAME]) == {"source", "status", "reason", "chunks"}


def test_index_full_flag(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["index"])
    capsys.readouterr()
    assert cli.main(["index", "--full", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["full"] and "full" in report["full_reason"]
    assert report["embedded_chunks"] == report["chunks"]


def test_index_sentences_flag(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def index(*flags: str) -> dict[str, int]:
        assert cli.main(["index", "--json", *flags]) == 0
        return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]

    assert index()["embedded_sentences"] > 0  # on for a new index
    off = index("--no-sentences")
    assert not off["full"] and off["embedded_chunks"] == off["embedded_sentences"] == 0
    assert read_manifest(workdir / "index")["sentences"] is False
    generation = workdir / "index" / read_manifest(workdir / "index")["generation"]
    assert not (generation / "sentence_vectors.npy").exists()
    assert index()["embedded_sentences"] == 0  # the index's own choice is kept
    on = index("--sentences")
    assert not on["full"] and on["embedded_chunks"] == 0 and on["embedded_sentences"] > 0
    assert read_manifest(workdir / "index")["sentences"] is True


def test_index_errors(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["index", "--corpus", "missing"]) == cli.ExitStatus.ERROR
    assert_one_error_line(capsys.readouterr().err)
    with index_lock(workdir / "index"):
        assert cli.main(["index"]) == cli.ExitStatus.ERROR
    err = capsys.readouterr().err
    assert_one_error_line(err)
    assert "another" in err


# ---------------------------------------------------------------------------------------
# ask and docs


@pytest.fixture
def indexed(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert cli.main(["index", "--quiet"]) == 0
    capsys.readouterr()
    return workdir


def test_ask_json(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "JT-60SA fusion facility", "--json", "-k", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and 0 < len(rows) <= 3
    assert [row["rank"] for row in rows] == list(range(1, len(rows) + 1))
    for row in rows:
        assert set(row) == PASSAGE_KEYS
        assert row["citation"].startswith(row["source"])
        assert row["citation"].endswith(f"chars {row['start']}–{row['end']}")
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)


def test_ask_readable(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "JT-60SA", "--mode", "bm25", "--source", SEED_NAME, "-k", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"[1] {SEED_NAME} · item 7 · chars ")
    assert "(score " in out
    assert "JT-60SA" in out


def test_ask_without_matches(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "qwertyzzz", "--mode", "bm25"]) == 0
    assert "No passages" in capsys.readouterr().out
    assert cli.main(["ask", "qwertyzzz", "--mode", "bm25", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_ask_source_filter_repeatable(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "ask",
        "fusion",
        "--json",
        "-k",
        "10",
        "--source",
        "notes.md",
        "--source",
        "sub/semis.txt",
    ]
    assert cli.main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and {r["source"] for r in rows} <= {"notes.md", "sub/semis.txt"}


@pytest.mark.parametrize("question", ["", "   "])
def test_ask_empty_question(
    indexed: Path, question: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["ask", question]) == cli.ExitStatus.ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_error_line(captured.err)
    assert "empty" in captured.err


def test_ask_missing_index(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "fusion"]) == cli.ExitStatus.ERROR
    err = capsys.readouterr().err
    assert_one_error_line(err)
    assert "tpd-qa index" in err


def test_ask_damaged_index(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generation = indexed / "index" / read_manifest(indexed / "index")["generation"]
    (generation / "vectors.npy").write_bytes(b"junk")
    assert cli.main(["ask", "fusion"]) == cli.ExitStatus.ERROR
    err = capsys.readouterr().err
    assert_one_error_line(err)
    assert "--full" in err


def test_docs(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["docs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["notes.md", "sub/semis.txt", SEED_NAME]
    assert cli.main(["docs", "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert [d["source"] for d in docs] == ["notes.md", "sub/semis.txt", SEED_NAME]
    assert {"source", "title", "kind", "pages", "chunks", "sha256"} <= set(docs[0])


def test_env_dirs_are_honoured(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "only.md").write_text("# Only\n\nOkinawa coral reef sensors.\n", encoding="utf-8")
    monkeypatch.setenv("TPD_QA_CORPUS", str(elsewhere))
    monkeypatch.setenv("TPD_QA_INDEX", str(workdir / "idx"))
    assert cli.main(["index", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["source"] for f in report["files"]] == ["only.md"]
    assert not (workdir / "index").exists()
    assert cli.main(["ask", "Okinawa coral", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["source"] == "only.md"
    # explicit options beat the environment
    assert cli.main(["index", "--corpus", "corpus", "--index", "index", "--json"]) == 0
    capsys.readouterr()
    assert cli.main(["ask", "Okinawa coral", "--index", "index", "--json", "--mode", "bm25"]) == 0
    assert json.loads(capsys.readouterr().out) == []


# ---------------------------------------------------------------------------------------
# as a separate process


def test_python_dash_m_end_to_end(corpus: Path, tmp_path: Path) -> None:
    help_run = run("--help", cwd=tmp_path)
    assert help_run.returncode == 0 and "usage: tpd-qa" in help_run.stdout
    built = run("index", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "3 added" in built.stdout
    asked = run("ask", "Does the deal commit any money?", "--json", "-k", "2", cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr
    rows = json.loads(asked.stdout)
    assert len(rows) == 2 and all(set(r) == PASSAGE_KEYS for r in rows)
    empty = run("ask", "   ", cwd=tmp_path)
    assert empty.returncode == 1 and empty.stdout == ""
    assert_one_error_line(empty.stderr)
    usage = run("ask", "q", "-k", "0", cwd=tmp_path)
    assert usage.returncode == 2
    assert_one_error_line(usage.stderr)
    missing = run("ask", "q", cwd=tmp_path, env={"TPD_QA_INDEX": str(tmp_path / "nope")})
    assert missing.returncode == 1
    assert_one_error_line(missing.stderr)
    assert "tpd-qa index" in missing.stderr


def test_subprocess_skips_exit_3(corpus: Path, tmp_path: Path) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    done = run("index", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "empty.txt" in done.stdout


def test_cli_import_is_light(tmp_path: Path) -> None:
    """Importing the CLI (and parsing arguments) does not import gradio or a model."""
    code = (
        "import sys, tpd_qa.cli as c\n"
        "try:\n    c.main(['ask', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('gradio', 'torch', 'sentence_transformers') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "HEAVY="
