"""Tests of watch mode: :class:`tpd_qa.watch.CorpusWatcher` and ``tpd-qa watch``.

The index follows additions, changes, renames and deletions within a bounded wait;
bursts are batched; files being written are not indexed half-written; failures are
reported and survived. All with the hashing embedder (TPD_QA_MODEL=hash).
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tpd_qa.api as api
from tpd_qa import cli
from tpd_qa.cli.output import rebuild_line, visible
from tpd_qa.errors import IngestError
from tpd_qa.index import index_lock
from tpd_qa.records import BuildReport, FileOutcome
from tpd_qa.watch import CorpusWatcher, Rebuild, WatchStatus, is_ignored

SRC = Path(__file__).resolve().parents[1] / "src"  # this checkout's code, whatever the cwd
WAIT = 20.0  # seconds any expected change may take to show in the index


def wait_for(condition: Callable[[], object], timeout: float = WAIT, what: str = "") -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")


def after(recorder: Recorder, watcher: CorpusWatcher, before: int, what: str) -> Rebuild:
    """Wait for a rebuild after the first ``before`` ones and for the watcher to be idle;
    returns the last rebuild."""
    wait_for(lambda: len(recorder.done()) > before, what=what)
    wait_for(lambda: watcher.status.state == "idle", what=f"idle after {what}")
    return recorder.done()[-1]


def sources(index_dir: Path) -> set[str]:
    try:
        return {doc.source for doc in api.list_documents(index_dir)}
    except Exception:  # not built yet, or replaced while reading: poll again
        return set()


def document_sha(index_dir: Path, source: str) -> str | None:
    for doc in api.list_documents(index_dir):
        if doc.source == source:
            return doc.sha256
    return None


class Recorder:
    """Collects what a watcher reports (callbacks run on the watcher's threads)."""

    def __init__(self) -> None:
        self.rebuilds: list[Rebuild] = []
        self.statuses: list[WatchStatus] = []
        self.lock = threading.Lock()

    def report(self, rebuild: Rebuild) -> None:
        with self.lock:
            self.rebuilds.append(rebuild)

    def change(self, status: WatchStatus) -> None:
        with self.lock:
            self.statuses.append(status)

    def done(self) -> list[Rebuild]:
        with self.lock:
            return list(self.rebuilds)

    def outcomes(self, source: str) -> list[str]:
        return [
            o.status
            for r in self.done()
            if r.report is not None
            for o in r.report.outcomes
            if o.source == source
        ]


@pytest.fixture(autouse=True)
def _hash_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPD_QA_MODEL", "hash")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def start_watcher(
    corpus: Path, tmp_path: Path, recorder: Recorder
) -> Iterator[Callable[..., CorpusWatcher]]:
    """Start a watcher on ``corpus`` in a thread (index in tmp_path/index unless given)
    and wait for its first build; stopped at the end of the test."""
    started: list[CorpusWatcher] = []

    def start(**options: object) -> CorpusWatcher:
        options.setdefault("index_dir", tmp_path / "index")
        options.setdefault("settle", 0.3)
        options.setdefault("debounce", 0.2)
        watcher = CorpusWatcher(
            corpus, on_report=recorder.report, on_change=recorder.change, **options
        )  # type: ignore[arg-type]
        started.append(watcher)
        watcher.start()
        wait_for(lambda: recorder.done(), what="the first build")
        wait_for(lambda: watcher.status.state == "idle", what="idle after the first build")
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


# ---------------------------------------------------------------------------------------
# the index follows the corpus


def test_index_follows_add_change_rename_delete(
    start_watcher: Callable[..., CorpusWatcher], corpus: Path, recorder: Recorder
) -> None:
    watcher = start_watcher()
    index_dir = watcher.index_dir
    first = recorder.done()[0]
    assert first.ok and first.report is not None and first.report.full
    assert first.counts()["added"] == 3
    assert sources(index_dir) == {
        "us-japan-technology-prosperity-deal.txt",
        "notes.md",
        "sub/semis.txt",
    }

    # add
    before = len(recorder.done())
    (corpus / "reactor.md").write_text("# Reactor\n\nThe stellarator coil winding plan.\n")
    added = after(recorder, watcher, before, "the added file")
    assert "reactor.md" in sources(index_dir)
    assert api.retrieve("stellarator coil", k=1, index_dir=index_dir)[0].source == "reactor.md"
    assert added.trigger == ("reactor.md",) and added.counts() == {"added": 1}
    assert added.summary() == "1 added"

    # change
    before = len(recorder.done())
    (corpus / "reactor.md").write_text("# Reactor\n\nThe heliotron divertor upgrade.\n")
    changed = after(recorder, watcher, before, "the changed file")
    assert "heliotron" in api.retrieve("heliotron divertor", k=1, index_dir=index_dir)[0].text
    assert changed.counts() == {"changed": 1}

    # rename (into a new folder)
    (corpus / "plans").mkdir()
    (corpus / "reactor.md").rename(corpus / "plans" / "reactor-plan.md")
    wait_for(lambda: "plans/reactor-plan.md" in sources(index_dir), what="the renamed file")
    assert "reactor.md" not in sources(index_dir)
    wait_for(lambda: "renamed" in recorder.outcomes("plans/reactor-plan.md"), what="renamed")

    # delete
    before = len(recorder.done())
    (corpus / "notes.md").unlink()
    removed = after(recorder, watcher, before, "the deleted file")
    assert "notes.md" not in sources(index_dir)
    assert removed.counts() == {"removed": 1}
    assert watcher.status.last_error == ""
    assert all(r.ok for r in recorder.done())


def test_status_reads_like_the_ui_line(
    start_watcher: Callable[..., CorpusWatcher], corpus: Path, recorder: Recorder
) -> None:
    watcher = start_watcher()
    (corpus / "one.txt").write_text("Photonic interconnect packaging.\n")
    (corpus / "two.txt").write_text("Cryogenic qubit control electronics.\n")
    wait_for(lambda: {"one.txt", "two.txt"} <= sources(watcher.index_dir), what="two files")
    wait_for(lambda: watcher.status.state == "idle", what="idle")
    status = watcher.status
    assert status.rebuilds == len(recorder.done()) >= 2
    assert status.last_success is not None and status.pending == 0
    assert status.describe(now=status.last_success + 12).startswith("index updated 12 s ago · ")
    # the watcher went through "pending" and "indexing" with the number of changed files
    seen = [s for s in recorder.statuses if s.state == "indexing" and s.indexing]
    assert seen and seen[-1].describe().startswith("indexing ")
    assert seen[-1].describe().endswith("file…") or seen[-1].describe().endswith("files…")
    assert any(s.state == "pending" and s.pending for s in recorder.statuses)


def test_ignored_changes_do_not_rebuild(
    start_watcher: Callable[..., CorpusWatcher], corpus: Path, recorder: Recorder
) -> None:
    """An index inside the corpus, hidden and temporary files never trigger a rebuild."""
    watcher = start_watcher(index_dir=corpus / "index")
    (corpus / ".notes.md.swp").write_bytes(b"\x00swap")
    (corpus / "~$report.docx").write_bytes(b"lock")
    (corpus / "draft.pdf.partial").write_bytes(b"%PDF-1.4 half")
    (corpus / "notes.md~").write_text("backup")
    (corpus / ".hidden").mkdir()
    (corpus / ".hidden" / "secret.txt").write_text("Hidden words.\n")
    (corpus / "real.txt").write_text("Neutron science beamline schedule.\n")
    after(recorder, watcher, 1, "the real file")
    assert "real.txt" in sources(watcher.index_dir)
    (corpus / "second.txt").write_text("Lunar regolith sampling.\n")
    after(recorder, watcher, 2, "the second file")
    assert "second.txt" in sources(watcher.index_dir)
    # every rebuild after the first was caused by exactly one of our two files: the
    # index's own writes (inside the corpus) and the temporary files caused none
    triggers = [r.trigger for r in recorder.done()[1:]]
    assert triggers == [("real.txt",), ("second.txt",)]


def test_is_ignored_rules(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    index = corpus / "index"
    for name in ["a.txt", "sub/b.pdf", "notes", "Report v2.docx", "sub", "#1 ideas.md"]:
        assert not is_ignored(corpus / name, corpus, index), name
    for name in [
        "index",
        "index/manifest.json",
        "index/.gen-1.partial/x",
        ".git/config",
        "sub/.DS_Store",
        "__pycache__/x.pyc",
        ".a.txt.swp",
        "a.txt.swo",
        "a.txt~",
        "~$report.docx",
        "#notes.md#",
        "download.pdf.crdownload",
        "big.pdf.part",
        "copy.txt.partial",
        "x.tmp",
    ]:
        assert is_ignored(corpus / name, corpus, index), name
    assert is_ignored(tmp_path / "elsewhere.txt", corpus, index)


# ---------------------------------------------------------------------------------------
# bursts and files being written


def test_burst_of_files_leads_to_a_handful_of_rebuilds(
    start_watcher: Callable[..., CorpusWatcher], corpus: Path, recorder: Recorder
) -> None:
    watcher = start_watcher(settle=1.0, debounce=0.5)
    burst = corpus / "burst"
    burst.mkdir()
    count = 500
    for n in range(count):
        (burst / f"note-{n:04d}.txt").write_text(f"Burst note number {n} about item {n * 7}.\n")
    wait_for(lambda: len(sources(watcher.index_dir)) == count + 3, what=f"{count} new files")
    wait_for(lambda: watcher.status.state == "idle", what="idle")
    later = recorder.done()[1:]
    assert 1 <= len(later) <= 5, [r.summary() for r in later]
    assert sum(r.counts().get("added", 0) for r in later) == count


def test_file_written_slowly_is_never_indexed_half_written(
    start_watcher: Callable[..., CorpusWatcher], corpus: Path, recorder: Recorder
) -> None:
    settle = 0.8
    watcher = start_watcher(settle=settle, debounce=0.1)
    pieces = [f"Part {n}: the cooperation covers subject {n} in depth.\n" for n in range(12)]
    target = corpus / "slow.txt"
    with target.open("w", encoding="utf-8") as out:
        for piece in pieces:  # one piece every settle/4 seconds: ~2.4 s of writing
            out.write(piece)
            out.flush()
            os.fsync(out.fileno())
            time.sleep(settle / 4)
    full = "".join(pieces).encode()
    wait_for(lambda: "slow.txt" in sources(watcher.index_dir), what="the slow file")
    assert document_sha(watcher.index_dir, "slow.txt") == hashlib.sha256(full).hexdigest()
    wait_for(lambda: watcher.status.state == "idle", what="idle")
    # indexed once, complete: never added half-written and then changed
    assert recorder.outcomes("slow.txt") == ["added"]


def test_size_change_without_an_event_postpones_the_rebuild(tmp_path: Path, corpus: Path) -> None:
    """Stability is checked on the files themselves, not only on the events."""
    watcher = CorpusWatcher(corpus, tmp_path / "index", settle=0.2)
    target = corpus / "growing.txt"
    target.write_text("first half")
    watcher._note([str(target)])
    wait_for(lambda: watcher._due(None) == 0, timeout=5, what="settled")
    with target.open("a") as out:  # grows, but no event is delivered
        out.write(" and the second half")
    assert watcher._due(None) > 0
    wait_for(lambda: watcher._due(None) == 0, timeout=5, what="settled again")


# ---------------------------------------------------------------------------------------
# failures


def test_rebuild_error_is_reported_and_watching_goes_on(
    start_watcher: Callable[..., CorpusWatcher],
    corpus: Path,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    watcher = start_watcher(error_retry=0.5)
    real_build = api.build_index
    failures = [OSError(errno.ENOSPC, "No space left on device", "index/x"), RuntimeError("bug")]

    def failing_build(*args: object, **kwargs: object) -> BuildReport:
        if failures:
            raise failures.pop(0)
        return real_build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "build_index", failing_build)
    (corpus / "after.txt").write_text("Quantum sensing testbed.\n")
    wait_for(lambda: "after.txt" in sources(watcher.index_dir), what="indexing after two failures")
    failed = [r for r in recorder.done() if not r.ok]
    assert [r.error for r in failed] == [
        "index/x: No space left on device",
        "unexpected RuntimeError: bug",
    ]
    assert all(r.trigger == ("after.txt",) for r in failed)
    assert any(s.last_error and s.retry_at for s in recorder.statuses)
    assert "last rebuild failed: index/x: No space left on device" in next(
        s.describe() for s in recorder.statuses if s.last_error
    )
    wait_for(lambda: watcher.status.state == "idle", what="idle")
    assert watcher.status.last_error == ""
    assert watcher._thread is not None and watcher._thread.is_alive()


def test_tpd_qa_error_is_reported(
    start_watcher: Callable[..., CorpusWatcher],
    corpus: Path,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    watcher = start_watcher(error_retry=60)

    def broken_build(*args: object, **kwargs: object) -> BuildReport:
        raise IngestError("corpus folder does not exist", str(corpus))

    monkeypatch.setattr(api, "build_index", broken_build)
    (corpus / "x.txt").write_text("text\n")
    wait_for(lambda: watcher.status.last_error, what="the error in the status")
    assert watcher.status.last_error.endswith("corpus folder does not exist")
    assert watcher.status.state == "pending" and watcher.status.pending == 1
    assert rebuild_line(recorder.done()[-1], 60).endswith("; trying again in 60 s")


def test_locked_index_is_retried(
    start_watcher: Callable[..., CorpusWatcher], corpus: Path, recorder: Recorder
) -> None:
    watcher = start_watcher(lock_retry=0.2)
    with index_lock(watcher.index_dir):
        (corpus / "locked.txt").write_text("Written while another rebuild runs.\n")
        wait_for(lambda: watcher.status.retry_at is not None, what="a retry to be planned")
        assert "locked.txt" not in sources(watcher.index_dir)
    wait_for(lambda: "locked.txt" in sources(watcher.index_dir), what="indexing after the lock")
    assert all(r.ok for r in recorder.done())  # waiting for a lock is not a failure


def test_stops_on_an_event(corpus: Path, tmp_path: Path, recorder: Recorder) -> None:
    stop = threading.Event()
    watcher = CorpusWatcher(corpus, tmp_path / "index", on_report=recorder.report)
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(watcher.run(stop)))
    thread.start()
    wait_for(lambda: recorder.done(), what="the first build")
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert result == ["stopped"]
    assert watcher.status.state == "stopped"
    assert watcher.status.describe().startswith("not watching")


def test_first_build_error_is_raised(tmp_path: Path) -> None:
    watcher = CorpusWatcher(tmp_path / "missing", tmp_path / "index")
    with pytest.raises(Exception, match="does not exist"):
        watcher.run()
    assert watcher.status.state == "stopped"


# ---------------------------------------------------------------------------------------
# output and the command line


def test_rebuild_line_is_sanitised() -> None:
    report = BuildReport(
        outcomes=[
            FileOutcome("evil\x1b]0;pwned\x07.txt", "added", chunks=1),
            FileOutcome("bad\u202e.pdf", "skipped", "no text layer"),
        ],
        documents=4,
        chunks=9,
    )
    rebuild = Rebuild(2, 0.0, 0.5, ("evil",), report, skipped=(report.outcomes[1],))
    line = rebuild_line(rebuild)
    assert line == visible(line)
    assert "\x1b" not in line and "\u202e" not in line
    assert "1 added, 1 skipped · 4 documents, 9 chunks · 0.5 s · added evil\\x1b]0;pwned" in line
    assert "skipped bad\\u202e.pdf (no text layer)" in line


def test_status_describe_texts() -> None:
    report = BuildReport(
        outcomes=[
            FileOutcome("a.txt", "added"),
            FileOutcome("b.txt", "added"),
            FileOutcome("c.txt", "changed"),
            FileOutcome("d.txt", "unchanged"),
        ]
    )
    rebuild = Rebuild(3, 100.0, 101.0, ("a.txt",), report)
    idle = WatchStatus(state="idle", last_rebuild=rebuild, last_success=101.0, rebuilds=3)
    assert idle.describe(now=113.0) == "index updated 12 s ago · 2 added, 1 changed"
    assert WatchStatus(state="indexing", indexing=3).describe() == "indexing 3 files…"
    assert WatchStatus(state="indexing", indexing=1).describe() == "indexing 1 file…"
    waiting = WatchStatus(state="pending", pending=2, last_success=101.0)
    assert waiting.describe(now=401.0) == (
        "index updated 5 min ago · 2 changes waiting for files to settle"
    )


def test_watch_help_documents_stopping(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["watch", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tpd-qa watch")
    assert "--corpus" in out and "--index" in out and "--quiet" in out
    assert "Ctrl-C" in out and "exit status 0" in out


class WatchProcess:
    """``python -m tpd_qa watch`` in a subprocess, its output lines collected as they come."""

    def __init__(self, cwd: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TPD_QA_")}
        env.update({"TPD_QA_MODEL": "hash", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
        env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
        # Ctrl+C's handler back first: a suite started in the background (``cmd &``,
        # nohup) ignores SIGINT, and a child inherits that, so SIGINT would not stop it.
        main = (
            "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "sys.argv[0] = 'tpd-qa'; runpy.run_module('tpd_qa', run_name='__main__')"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", main, "watch", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self, sig: int) -> tuple[int, str]:
        self.process.send_signal(sig)
        try:
            _, stderr = self.process.communicate(timeout=WAIT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self.reader.join(5)
        return self.process.returncode, stderr


def test_tpd_qa_watch_subprocess(corpus: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    watch = WatchProcess(tmp_path, "--corpus", str(corpus), "--index", str(index_dir))
    try:
        wait_for(lambda: any("full rebuild" in line for line in watch.lines), what="first build")
        assert watch.lines[0].startswith("watching ")
        assert "3 added" in watch.lines[1]

        def printed(text: str) -> Callable[[], bool]:
            return lambda: any(text in line for line in watch.lines)

        (corpus / "new.txt").write_text("Spectrum sharing for open radio networks.\n")
        wait_for(printed("added new.txt"), what="added line")
        assert "new.txt" in sources(index_dir)
        (corpus / "new.txt").write_text("Undersea fibre resilience funding.\n")
        wait_for(printed("changed new.txt"), what="changed line")
        assert api.retrieve("undersea fibre", k=1, index_dir=index_dir)[0].source == "new.txt"
        (corpus / "new.txt").rename(corpus / "cables.txt")
        wait_for(printed("renamed cables.txt (was new.txt)"), what="renamed line")
        assert "cables.txt" in sources(index_dir) and "new.txt" not in sources(index_dir)
        (corpus / "sub" / "semis.txt").unlink()
        wait_for(printed("removed sub/semis.txt"), what="removed line")
        assert "sub/semis.txt" not in sources(index_dir)
    finally:
        status, stderr = watch.stop(signal.SIGINT)
    assert status == 0, stderr
    assert "stopped watching" in stderr and "Traceback" not in stderr
    summaries = [line.split("] ", 1)[1].split(" · ")[0] for line in watch.lines[2:]]
    assert summaries == ["1 added", "1 changed", "1 renamed", "1 removed"]


def test_tpd_qa_watch_quiet_stops_on_sigterm(corpus: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    api.build_index(corpus, index_dir)  # nothing to do at the start: nothing printed
    watch = WatchProcess(tmp_path, "--corpus", str(corpus), "--index", str(index_dir), "--quiet")
    try:
        (corpus / "late.txt").write_text("Biotechnology sample exchange.\n")
        wait_for(lambda: "late.txt" in sources(index_dir), what="added file")
        wait_for(lambda: watch.lines, what="one line for the rebuild")
    finally:
        status, stderr = watch.stop(signal.SIGTERM)
    assert status == 0, stderr
    assert stderr == ""
    assert len(watch.lines) == 1 and "1 added" in watch.lines[0] and "late.txt" in watch.lines[0]
