"""Promise 3: a messy corpus is indexed anyway; every bad file is reported with its reason.

One ``tpd-qa index`` run (a real process) over 19 good files mixed with 255 bad ones:
random bytes under .pdf/.docx/.html/.txt/.md names, zero-byte and blank files, an
encrypted PDF, a PDF without a text layer, a DOCX zip bomb (256 MB of zeros, streamed),
a 100 MB text file, HTML nested 200,000 deep, invalid UTF-8, a FIFO, symbolic-link loops,
dangling links, links out of the corpus, an unreadable file and an unreadable folder.

Unreadable files: root ignores file permissions, so as root the run is made with
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped from the capability bounding set
(``setpriv``), which makes permissions apply to root too; as another user permissions
apply anyway; only without either (root, no setpriv) is ``open``/``scandir`` patched in
the subprocess to refuse those paths. ``PERMISSION_MODE`` records which one ran.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from documents import docx_bytes, encrypt_pdf, pdf_bytes, scanned_pdf_bytes
from hardening_support import cli_env, token, write_text_corpus
from tpd_qa import api
from tpd_qa.index import Index

pytestmark = pytest.mark.slow

MAX_RSS_BYTES = 512 * 1024 * 1024  # measured: ~150 MB
DROP_DAC = "--bounding-set=-dac_override,-dac_read_search"

# Runs the CLI, then prints the peak resident set size. With argv[1] == "patched", file
# names starting with "locked" are refused as a permission error (see the module doc).
_RUNNER = r"""
import os, sys
if sys.argv[1] == "patched":
    import builtins
    from tpd_qa.ingest import read as ingest_read
    real_open, real_scandir = builtins.open, os.scandir
    def refuse(path):
        if os.path.basename(os.fspath(path)).startswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
    def guarded_open(path, *args, **kwargs):
        refuse(path)
        return real_open(path, *args, **kwargs)
    def guarded_scandir(path="."):
        refuse(path)
        return real_scandir(path)
    ingest_read.open = guarded_open
    os.scandir = guarded_scandir
from tpd_qa.cli import main
code = main(sys.argv[2:])
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so it would report
# the (large) pytest parent's resident size instead of this process's own peak.
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024
print(f"peak_rss_bytes={peak}", file=sys.stderr)
sys.exit(code)
"""


def _zip_bomb(path: Path, megabytes: int = 256) -> None:
    """A DOCX-shaped zip whose document part inflates to ``megabytes`` of zeros."""
    block = b"\0" * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            for _ in range(megabytes):
                member.write(block)


class Hostile:
    """The generated corpus: good files (source -> its token) and bad files (-> reason)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.corpus = root / "corpus"
        self.index = root / "index"
        self.outside = root / "outside"
        self.good: dict[str, str] = {}
        self.bad: dict[str, str] = {}
        self.corpus.mkdir()
        self.outside.mkdir()
        self._good_files()
        self._bad_files()

    def _good(self, name: str | bytes, data: bytes, number: int) -> None:
        path = self.corpus / os.fsdecode(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        shown = os.fsencode(os.fsdecode(name)).decode("utf-8", "backslashreplace")
        self.good[shown] = token(number)

    def _good_files(self) -> None:
        for path in write_text_corpus(self.corpus / "good", 8, seed=11):
            self.good[f"good/{path.name}"] = token(int(path.stem[3:]))
        sentence = "The delegation discussed {} and semiconductor supply chains."
        self._good("notes.md", f"# Notes\n\n{sentence.format(token(100))}\n".encode(), 100)
        html = f"<html><head><title>Page</title></head><body><p>{sentence.format(token(101))}"
        self._good("page.html", (html + "</p></body></html>").encode(), 101)
        self._good("report.pdf", pdf_bytes([[sentence.format(token(102))]]), 102)
        self._good(
            "memo.docx", docx_bytes([sentence.format(token(103))], heading="Hardening notes"), 103
        )
        latin = f"Caf\xe9 r\xe9sum\xe9 na\xefve: {sentence.format(token(104))}\n"
        self._good("latin1.txt", latin.encode("cp1252"), 104)  # invalid UTF-8, still text
        japanese = f"日米技術繁栄協定は半導体の協力を強化します。{token(105)}\n"
        self._good("japanese.txt", japanese.encode("utf-8"), 105)
        self._good("utf16.txt", sentence.format(token(106)).encode("utf-16"), 106)
        nested = "<div>" * 2000 + sentence.format(token(107)) + "</div>" * 2000
        self._good("nested-2000.html", f"<html><body>{nested}</body></html>".encode(), 107)
        name = b"caf\xe9-name.txt"  # a file name that is not valid UTF-8
        self._good(name, sentence.format(token(108)).encode(), 108)
        self._good("new\nline.txt", sentence.format(token(109)).encode(), 109)
        self._good("deep/a/b/c/d/e/f/g/h/leaf.txt", sentence.format(token(110)).encode(), 110)

    def _bad(self, name: str, data: bytes | None, reason: str) -> Path:
        path = self.corpus / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        self.bad[name] = reason
        return path

    def _bad_files(self) -> None:
        rng = random.Random(5)
        expected = {
            ".pdf": "not a PDF",
            ".docx": "not a DOCX",
            ".html": "binary",
            ".txt": "binary",
            ".md": "binary",
        }
        for suffix, reason in expected.items():
            for number in range(45):
                data = rng.randbytes(rng.randint(16, 6000))
                self._bad(f"random/{number:02d}{suffix}", data, reason)
        self._bad("magic.pdf", b"%PDF-1.7\n" + rng.randbytes(3000), "PDF")
        self._bad("magic.docx", b"PK\x03\x04" + rng.randbytes(3000), "DOCX")
        for suffix in (".txt", ".md", ".markdown", ".pdf", ".docx", ".html", ".htm"):
            self._bad(f"empty/zero{suffix}", b"", "empty")
        self._bad("empty/blank.txt", b" \n\t\n  \r\n", "empty")
        self._bad(
            "encrypted.pdf", encrypt_pdf(pdf_bytes([["Secret minutes"]]), "hunter2"), "encrypted"
        )
        self._bad("scanned.pdf", scanned_pdf_bytes(), "no text layer")
        _zip_bomb(self._bad("bomb.docx", None, "zip bomb"))
        with open(self._bad("huge.txt", b"", "too large"), "wb") as handle:
            handle.write(b"A huge text file.\n")  # 100 MB, sparse: cheap to make
            handle.truncate(100 * 1024 * 1024)
        deep = "<html><body>" + "<div>" * 200_000 + "deep" + "</div>" * 200_000
        self._bad("deep.html", deep.encode(), "nested too deeply")
        invalid = bytes(
            rng.choice(b"\xc0\xc1\xf5\xff\xfe\x80\xbf\xe2\x28\xa1") for _ in range(3000)
        )
        self._bad("invalid-utf8.txt", invalid, "binary")
        self._bad("long-line.txt", b"word " * 1_100_000, "text too long")
        os.mkfifo(self._bad("pipe.txt", None, "not a regular file"))
        for name in ("photo.gif", "program.exe", "Makefile"):
            self._bad(name, b"\x89PNG\r\n\x1a\n" + rng.randbytes(100), "unsupported file type")
        # Images are read by OCR now: a damaged one or a renamed file is refused.
        self._bad("photo.png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(100), "corrupt image")
        self._bad("photo.jpg", b"\x89PNG\r\n\x1a\n" + rng.randbytes(100), "not a JPEG image")
        # Links: loops, dangling, out of the corpus, to folders.
        self._bad("links/loop-a.txt", None, "broken link").symlink_to("loop-b.txt")
        self._bad("links/loop-b.txt", None, "broken link").symlink_to("loop-a.txt")
        self._bad("links/self.txt", None, "broken link").symlink_to("self.txt")
        self._bad("links/dangling.txt", None, "broken link").symlink_to("missing.txt")
        secret = self.outside / "secret.txt"
        secret.write_text(f"Outside secret {token(900)} must never be indexed.\n")
        self._bad("links/outside.txt", None, "outside the corpus").symlink_to(secret)
        self._bad("links/outside-dir", None, "not followed").symlink_to(self.outside)
        self._bad("links/up", None, "not followed").symlink_to("..")
        # Unreadable.
        locked = self._bad("locked.txt", f"Locked {token(901)}\n".encode(), "permission denied")
        locked.chmod(0)
        inner = self.corpus / "locked-dir" / "inside.txt"
        inner.parent.mkdir()
        inner.write_text(f"Locked away {token(902)}\n")
        inner.parent.chmod(0)
        self.bad["locked-dir"] = "cannot read folder"

    def unlock(self) -> None:
        (self.corpus / "locked-dir").chmod(0o755)
        (self.corpus / "locked.txt").chmod(0o644)


def _permission_mode(root: Path) -> str:
    """How unreadable files are made unreadable here: setpriv, non-root or patched."""
    if os.geteuid() != 0:
        return "non-root"
    probe = root / "probe"
    probe.write_text("x")
    probe.chmod(0)
    if shutil.which("setpriv"):
        result = subprocess.run(
            ["setpriv", DROP_DAC, "cat", str(probe)], capture_output=True, check=False
        )
        if result.returncode != 0 and b"ermission denied" in result.stderr:
            return "setpriv"
    return "patched"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("hostile")
    hostile = Hostile(root)
    mode = _permission_mode(root)
    command = [sys.executable, "-c", _RUNNER, "patched" if mode == "patched" else "-"]
    command += ["index", "--json", "--quiet"]
    command += ["--corpus", str(hostile.corpus), "--index", str(hostile.index)]
    if mode == "setpriv":
        command = ["setpriv", DROP_DAC, *command]
    try:
        result = subprocess.run(
            command, env=cli_env(), capture_output=True, text=True, timeout=600, check=False
        )
    finally:
        hostile.unlock()
    print(f"unreadable files checked by: {mode}")
    return {"hostile": hostile, "result": result, "mode": mode}


def test_run_finishes_with_exit_3_and_bounded_memory(run: dict[str, Any]) -> None:
    result = run["result"]
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    peak = int(result.stderr.rsplit("peak_rss_bytes=", 1)[1].split()[0])
    print(f"peak RSS {peak / 2**20:.0f} MB")
    assert peak < MAX_RSS_BYTES


def test_every_bad_file_is_reported_with_its_reason(run: dict[str, Any]) -> None:
    hostile: Hostile = run["hostile"]
    report = json.loads(run["result"].stdout)
    outcomes = {f["source"]: f for f in report["files"]}
    assert len(hostile.bad) >= 250
    problems = []
    for source, reason in sorted(hostile.bad.items()):
        outcome = outcomes.get(source)
        if outcome is None or outcome["status"] != "skipped" or reason not in outcome["reason"]:
            problems.append((source, reason, outcome))
    assert not problems, problems[:10]
    assert report["counts"]["skipped"] == len(hostile.bad)


def test_every_good_file_is_indexed_and_answerable(run: dict[str, Any]) -> None:
    hostile: Hostile = run["hostile"]
    report = json.loads(run["result"].stdout)
    status = {f["source"]: f["status"] for f in report["files"]}
    assert {source: status.get(source) for source in hostile.good} == dict.fromkeys(
        hostile.good, "added"
    )
    assert report["documents"] == len(hostile.good)
    index = Index.load(hostile.index)
    for source, word in hostile.good.items():
        passages = index.search(word, 3, mode="bm25")
        assert passages and passages[0].source == source, (source, passages[:1])
    # Nothing from outside the corpus or from unreadable files got in.
    for word in (token(900), token(901), token(902)):
        assert index.search(word, 3, mode="bm25") == []


def test_second_run_reports_the_same_and_embeds_nothing(run: dict[str, Any]) -> None:
    hostile: Hostile = run["hostile"]
    if run["mode"] != "non-root":  # unlocked after the first run: drop them here
        (hostile.corpus / "locked.txt").unlink()
        shutil.rmtree(hostile.corpus / "locked-dir")
    report = api.build_index(hostile.corpus, hostile.index, model="hash")
    assert report.embedded_chunks == 0
    assert not report.full
    assert report.documents == len(hostile.good)


def test_oversized_file_is_never_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The size limit is checked on the directory entry: the 100 MB file is never read."""
    import builtins

    corpus = tmp_path / "corpus"
    write_text_corpus(corpus, 2, seed=1)
    with open(corpus / "huge.txt", "wb") as handle:
        handle.truncate(100 * 1024 * 1024)
    opened: list[str] = []
    real_open = builtins.open

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(os.fspath(file) if isinstance(file, str | os.PathLike) else str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    report = api.build_index(corpus, tmp_path / "index", model="hash")
    monkeypatch.undo()
    assert [o.reason for o in report.skipped] == ["file too large (100 MB > 50 MB limit)"]
    assert not [name for name in opened if name.endswith("huge.txt")]
    assert any(name.endswith("doc0001.txt") for name in opened)
