"""How fast a watched corpus follows its files: one copied document, then a burst.

    PYTHONPATH=src .venv/bin/python bench/bench_watch.py [--burst 1000] [--model hash]

A :class:`tpd_qa.watch.CorpusWatcher` with its default timing (``settle`` 1 s,
``debounce`` 1 s, as ``tpd-qa watch`` and ``serve --watch`` run it) watches a copy of
``corpus/``. Measured: seconds from copying one text document until the index lists it,
and for a burst of ``--burst`` small files written one after another, how many rebuilds
they caused and the seconds from the last write until the index holds them all. The
default model is the hashing embedder, so the figures are the watcher's own (settling,
rebuilds, saving) rather than the embedding model's.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from _common import CORPUS, write_results

from tpd_qa import api
from tpd_qa.watch import CorpusWatcher
from tpd_qa.watch.status import Rebuild

_NOTE = (
    "Field note {n}: the survey team logged sample {n} at station {station}, "
    "with readings checked twice.\n"
)


def _wait(condition: Callable[[], bool], timeout: float) -> float:
    """Poll ``condition`` every 20 ms; returns when it became true (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if condition():
            return time.perf_counter()
        time.sleep(0.02)
    sys.exit(f"timed out after {timeout:.0f} s")


def _sources(index_dir: Path) -> set[str]:
    try:
        return {doc.source for doc in api.list_documents(index_dir)}
    except Exception:  # not saved yet, or replaced while reading: poll again
        return set()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--burst", type=int, default=1000, help="files in the burst")
    parser.add_argument("--model", default="hash", help="embedding model (default: hash)")
    args = parser.parse_args()

    rebuilds: list[Rebuild] = []
    lock = threading.Lock()

    def report(rebuild: Rebuild) -> None:
        with lock:
            rebuilds.append(rebuild)

    def done() -> list[Rebuild]:
        with lock:
            return list(rebuilds)

    with tempfile.TemporaryDirectory() as folder:
        corpus, index_dir = Path(folder) / "corpus", Path(folder) / "index"
        shutil.copytree(CORPUS, corpus)
        watcher = CorpusWatcher(corpus, index_dir, model=args.model, on_report=report)
        watcher.start()
        try:
            _wait(lambda: bool(done()) and watcher.status.state == "idle", 600)
            first = done()[0]
            print(f"first build: {first.finished - first.started:.1f} s", file=sys.stderr)

            draft = Path(folder) / "wombat.txt"
            draft.write_text(_NOTE.format(n=0, station="Cradle Mountain"), encoding="utf-8")
            copied = time.perf_counter()
            shutil.copy(draft, corpus / draft.name)
            single = _wait(lambda: draft.name in _sources(index_dir), 600) - copied
            _wait(lambda: watcher.status.state == "idle", 600)
            print(f"one copied file listed after {single:.2f} s", file=sys.stderr)

            before = len(done())
            burst = corpus / "burst"
            burst.mkdir()
            started = time.perf_counter()
            for n in range(args.burst):
                text = _NOTE.format(n=n, station=n * 7 % 101)
                (burst / f"note-{n:04d}.txt").write_text(text, encoding="utf-8")
            written = time.perf_counter()
            expected = len(_sources(index_dir)) + args.burst
            current = _wait(lambda: len(_sources(index_dir)) == expected, 1800) - written
            _wait(lambda: watcher.status.state == "idle", 600)
            later = done()[before:]
            added = sum(r.counts().get("added", 0) for r in later)
            print(
                f"burst of {args.burst} files written in {written - started:.1f} s: "
                f"{len(later)} rebuilds ({', '.join(r.summary() for r in later)}), "
                f"index current {current:.1f} s after the last write",
                file=sys.stderr,
            )
        finally:
            watcher.stop()

    write_results(
        "watch",
        {
            "model": args.model,
            "settle_s": watcher.settle,
            "debounce_s": watcher.debounce,
            "first_build_s": first.finished - first.started,
            "single_file_listed_s": single,
            "burst_files": args.burst,
            "burst_write_s": written - started,
            "burst_rebuilds": len(later),
            "burst_added": added,
            "burst_current_after_last_write_s": current,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
