"""Every OS-level failure of ``tpd-qa`` ends in one line and a documented exit status.

Permission denied (a read-only index folder, with an index in it or empty), disk full,
an ``--index`` that is a file, a reader that closes the pipe early, Ctrl-C, and a
``--source`` that names no indexed document.

Permissions: root ignores them, so the "real" variant runs the CLI as root with
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped from its bounding set (``setpriv``),
which makes ``chmod`` apply (as another user it applies anyway). The "patched" variant
runs everywhere: the subprocess's ``open``/``os.open``/``os.mkdir`` raise
``PermissionError`` for writes under the read-only folder, as the kernel would.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy
import pytest

import tpd_qa.api as api
from hardening_support import cli_env
from tpd_qa.cli import main
from tpd_qa.cli.status import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
)

DROP_DAC = "--bounding-set=-dac_override,-dac_read_search"
SRC = Path(__file__).resolve().parents[1] / "src"


def env() -> dict[str, str]:
    """The subprocess environment: hash model, and this checkout's code whatever the cwd."""
    return cli_env(PYTHONPATH=str(SRC))


# argv[1]: "-" or a folder under which every write is refused with EACCES.
_RUNNER = r"""
import builtins, errno, io, os, sys
READ_ONLY = sys.argv[1]
if READ_ONLY != "-":
    def refuse(path):
        if os.path.abspath(os.fsdecode(path)).startswith(READ_ONLY + os.sep):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
    def patched_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)
    def patched_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)
    def patched_mkdir(path, *args, **kwargs):
        refuse(path)
        return real_mkdir(path, *args, **kwargs)
    builtins.open = io.open = patched_open
    os.open, os.mkdir = patched_os_open, patched_mkdir
from tpd_qa.cli import main
sys.exit(main(sys.argv[2:]))
"""


def one_error_line(stderr: str, *must: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("tpd-qa: error: "), lines[0]
    for text in must:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def _real_permissions_apply(tmp_path: Path) -> list[str] | None:
    """The command prefix under which chmod stops this process's writes, or None."""
    if os.geteuid() != 0:
        return []
    probe = tmp_path / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        if shutil.which("setpriv"):
            done = subprocess.run(
                ["setpriv", DROP_DAC, "touch", str(probe / "x")], capture_output=True, check=False
            )
            if done.returncode != 0 and b"ermission denied" in done.stderr:
                return ["setpriv", DROP_DAC]
        return None
    finally:
        probe.chmod(0o755)


def run_read_only(tmp_path: Path, how: str, read_only: Path, *args: str) -> Any:
    """``tpd-qa ARGS`` in a subprocess that cannot write under ``read_only``."""
    read_only = read_only.resolve()
    command = [sys.executable, "-c", _RUNNER, "-", *args]
    if how == "patched":
        command[3] = str(read_only)
    else:
        prefix = _real_permissions_apply(tmp_path)
        if prefix is None:
            pytest.skip("root without setpriv: only the patched variant can run here")
        command = [*prefix, *command]
    read_only.chmod(0o555)
    try:
        return subprocess.run(
            command, env=env(), capture_output=True, text=True, timeout=120, check=False
        )
    finally:
        read_only.chmod(0o755)


@pytest.fixture
def built(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An index of ``corpus`` in tmp_path/index, built with the hash model."""
    monkeypatch.setenv("TPD_QA_MODEL", "hash")
    index_dir = tmp_path / "index"
    api.build_index(corpus, index_dir)
    return index_dir


# ------------------------------------------------------------------ permission denied


@pytest.mark.parametrize("how", ["real", "patched"])
def test_read_only_index_folder_with_an_index(
    corpus: Path, built: Path, tmp_path: Path, how: str
) -> None:
    before = sorted(p.name for p in built.iterdir())
    (corpus / "new.md").write_text("# New\n\nA new note on quantum sensors.\n", encoding="utf-8")
    args = ["index", "--quiet", "--corpus", str(corpus), "--index", str(built)]
    done = run_read_only(tmp_path, how, built, *args)
    assert done.returncode == EXIT_ERROR, done.stderr
    line = one_error_line(done.stderr, "permission denied", str(built.resolve()), "--index")
    assert "give your user access to" in line
    assert sorted(p.name for p in built.iterdir()) == before  # nothing left behind
    assert api.retrieve("tokamak", 1, index_dir=built)  # the old index still answers


@pytest.mark.parametrize("how", ["real", "patched"])
def test_read_only_empty_index_folder(corpus: Path, tmp_path: Path, how: str) -> None:
    empty = tmp_path / "empty-index"
    empty.mkdir()
    args = ["index", "--quiet", "--corpus", str(corpus), "--index", str(empty)]
    done = run_read_only(tmp_path, how, empty, *args)
    assert done.returncode == EXIT_ERROR, done.stderr
    one_error_line(done.stderr, "permission denied", str(empty.resolve()), "--index")
    assert list(empty.iterdir()) == []


# ------------------------------------------------------------------ disk full


def test_disk_full_while_saving(
    corpus: Path, built: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ENOSPC from a write (which names no file) blames the index folder; the old index stays."""
    before = sorted(p.name for p in built.iterdir())

    def full_disk(handle: Any, *args: Any, **kwargs: Any) -> None:
        handle.write(b"\x93NUMPY partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(numpy, "save", full_disk)
    (corpus / "new.md").write_text("# New\n\nQuantum sensors.\n", encoding="utf-8")
    status = main(["index", "--quiet", "--corpus", str(corpus), "--index", str(built)])
    assert status == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    one_error_line(captured.err, "no space left", str(built), "free some space")
    assert sorted(p.name for p in built.iterdir()) == before  # no .gen-*.partial left
    monkeypatch.undo()
    assert [p.source for p in api.retrieve("JT-60SA", 3, index_dir=built, mode="bm25")]


# ------------------------------------------------------------------ not a directory


@pytest.mark.parametrize("command", [["ask", "fusion"], ["docs"], ["docs", "--json"]])
def test_index_option_is_a_file(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    regular = tmp_path / "not-a-folder"
    regular.write_text("hello", encoding="utf-8")
    assert main([*command, "--index", str(regular)]) == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    one_error_line(captured.err, str(regular), "is a file", "choose another --index")
    # a path *through* a file: NotADirectoryError from the system, named and explained
    assert main([*command, "--index", str(regular / "sub")]) == EXIT_ERROR
    one_error_line(capsys.readouterr().err, str(regular / "sub"), "is a file, not a folder")


# ------------------------------------------------------------------ broken pipe


def _closed_pipe_run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run ``tpd-qa ARGS`` with stdout a pipe whose reader is already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "tpd_qa", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env(),
            cwd=cwd,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args", [["ask", "tokamak", "-k", "3"], ["docs", "--json"], ["docs"]], ids=" ".join
)
def test_closed_pipe_stops_quietly_with_141(built: Path, args: list[str]) -> None:
    done = _closed_pipe_run([*args, "--index", str(built)], built.parent)
    assert done.returncode == EXIT_BROKEN_PIPE == 141
    assert done.stderr == b""


@pytest.mark.parametrize(
    "pipeline",
    [
        "{tpd} ask tokamak --index {index} -k 5 | head -1",
        "{tpd} docs --json --index {index} | true",
    ],
)
def test_shell_pipelines(built: Path, pipeline: str) -> None:
    """The real thing: the reader may go before or after tpd-qa writes; never a traceback."""
    tpd = f"{sys.executable} -m tpd_qa"
    script = pipeline.format(tpd=tpd, index=built) + '; echo "status=${PIPESTATUS[0]}" >&2'
    done = subprocess.run(
        ["bash", "-c", script], env=env(), capture_output=True, text=True, timeout=120
    )
    assert done.stderr.splitlines() in (["status=0"], ["status=141"]), done.stderr
    if "head" in pipeline:
        assert done.stdout.startswith("[1] ") and done.stdout.count("\n") == 1


# ------------------------------------------------------------------ interrupted


@pytest.mark.parametrize("function", ["retrieve", "build_index"])
def test_interrupt_is_one_line_and_130(
    built: Path,
    corpus: Path,
    function: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, function, interrupted)
    argv = (
        ["ask", "tokamak", "--index", str(built)]
        if function == "retrieve"
        else ["index", "--corpus", str(corpus), "--index", str(built)]
    )
    assert main(argv) == EXIT_INTERRUPTED == 130
    one_error_line(capsys.readouterr().err, "interrupted")


# ------------------------------------------------------------------ --source


def test_unknown_source_is_named_with_close_names(
    corpus: Path, built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ask", "tokamak", "--index", str(built), "--source", "note.md", "--source", "zzz.pdf"]
    assert main(argv) == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    line = one_error_line(captured.err, "'note.md'", "did you mean 'notes.md'", "'zzz.pdf'")
    assert "tpd-qa docs" in line
    assert main([*argv[:4], "--source", "sub/semis.txt", "--json"]) == EXIT_OK
    assert {row["source"] for row in json.loads(capsys.readouterr().out)} <= {"sub/semis.txt"}


def test_duplicate_alias_is_a_known_source(
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TPD_QA_MODEL", "hash")
    shutil.copy(corpus / "notes.md", corpus / "copy-of-notes.md")
    index_dir = tmp_path / "index"
    assert main(["index", "--quiet", "--corpus", str(corpus), "--index", str(index_dir)]) == 0
    capsys.readouterr()
    documents = api.list_documents(index_dir)
    alias = next(a for d in documents for a in d.duplicates)
    argv = ["ask", "tokamak", "--index", str(index_dir), "--source", alias, "--json"]
    assert main(argv) == EXIT_OK
    assert json.loads(capsys.readouterr().out)
    assert main([*argv[:4], "--source", "copy-of-note.md"]) == EXIT_ERROR
    one_error_line(capsys.readouterr().err, "did you mean 'copy-of-notes.md'")


# ------------------------------------------------------------------ shared rules, help


def test_mode_aliases_and_k_follow_the_shared_rules(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for alias, mode in [("semantic", "dense"), ("KEYWORD", "bm25"), ("Hybrid", "hybrid")]:
        argv = ["ask", "tokamak", "--index", str(built), "--mode", alias, "--json", "-k", "2"]
        assert main(argv) == EXIT_OK, mode
        assert len(json.loads(capsys.readouterr().out)) <= 2
    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "tokamak", "-k", "2.5"])
    assert exit_info.value.code == EXIT_USAGE
    assert "k must be a whole number" in capsys.readouterr().err


def test_help_documents_every_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for status, words in [(0, "success"), (1, "error"), (2, "usage"), (3, "skipped")]:
        assert any(line.split()[:1] == [str(status)] and words in line for line in out.splitlines())
    assert "130" in out and "interrupted" in out
    assert "141" in out and "closed early" in out
    assert "permission denied" in out and "disk" in out
