"""Keep an index current while its corpus changes: :class:`CorpusWatcher`.

Changes to the corpus folder are noticed with ``watchfiles`` (inotify on Linux) and
answered with the same incremental rebuild as ``tpd-qa index`` (:func:`api.build_index`):

* one rebuild at a time, and only once the changed files have settled: no change
  seen for ``settle`` seconds and their sizes and modification times unchanged over
  that time, so a file still being written is not indexed half-written and a burst
  of a thousand copied files leads to a handful of rebuilds, not a thousand;
* changes inside the index folder (when it is inside the corpus), hidden files and
  folders, and temporary files (editor swap and backup files, ``.partial`` and
  browser downloads in progress, Office ``~$`` lock files) are ignored;
* a failed rebuild (a :class:`TpdQaError`, an OS error, a bug) is logged and reported
  through the status and is retried later; it never stops the watcher. A rebuild
  that finds the index locked by another one waits a little and tries again.

The watcher's state is a small immutable ``WatchStatus`` (read :attr:`CorpusWatcher.status`
at any time, or pass ``on_change``) and every rebuild is reported as a ``Rebuild``
(``on_report``), both from :mod:`tpd_qa.watch.status`, so a user interface can show
"index updated 12 s ago · 2 added, 1 changed" or "indexing 3 files…".
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import Literal, TypeVar

import tpd_qa.api as api
from tpd_qa.errors import IndexLockedError, TpdQaError
from tpd_qa.records import BuildReport, FileOutcome
from tpd_qa.watch.status import Rebuild, WatchStatus

__all__ = ["CorpusWatcher", "is_ignored"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Names of files that are being written or belong to an editor, never documents.
_TEMPORARY = re.compile(
    r"""(
        ~$                                   # editor backups: notes.md~
      | ^~\$                                 # Office lock files: ~$report.docx
      | ^\#.*\#$                             # Emacs auto-save: #notes.md#
      | \.sw[a-p]$                           # Vim swap files
      | \.(partial|part|crdownload|download|tmp|temp|filepart|kate-swp)$
    )""",
    re.IGNORECASE | re.VERBOSE,
)


def is_ignored(path: str | PurePath, corpus: Path, index_dir: Path | None = None) -> bool:
    """Whether a change to ``path`` cannot matter to the index of ``corpus``.

    ``corpus`` and ``index_dir`` must be absolute and resolved. True for paths outside the
    corpus, inside the index folder, with a hidden part (as discovery skips them) or a
    ``__pycache__`` folder, and for temporary and lock files.
    """
    candidate = PurePath(path)
    if index_dir is not None and (candidate == index_dir or candidate.is_relative_to(index_dir)):
        return True
    if not candidate.is_relative_to(corpus):
        return True
    parts = candidate.relative_to(corpus).parts
    if any(part.startswith(".") or part == "__pycache__" for part in parts):
        return True
    return bool(parts) and _TEMPORARY.search(parts[-1]) is not None


StatusCallback = Callable[[WatchStatus], None]
RebuildCallback = Callable[[Rebuild], None]
_READY_PROBE_MS = 200  # how often the event thread wakes without changes
_READY_WAIT = 30.0  # longest wait for the watch to be in place (huge trees take a while)
_Stamp = tuple[int, int] | None  # (size, mtime_ns) of a changed path; None once it is gone


@dataclass(slots=True)
class _Changes:
    """Changed paths (absolute) seen since the last rebuild started, guarded by the lock."""

    paths: dict[str, _Stamp] = field(default_factory=dict)
    last_seen: float = 0.0  # time.monotonic() of the last change or instability


class CorpusWatcher:
    """Watch ``corpus_dir`` and keep ``index_dir`` current (defaults as :mod:`tpd_qa.api`).

    ``run()`` blocks until ``stop()`` (or the ``stop_event`` given to it) or Ctrl-C;
    ``start()`` runs it in a daemon thread, for servers. The first thing it does is an
    incremental rebuild (``initial_build``), which catches what changed while nobody was
    watching; an error there other than a locked index is raised (the folders are
    unusable), errors in later rebuilds are reported and retried.

    Callbacks run on the watcher's threads and must be quick; an exception in one is
    logged and ignored.
    """

    def __init__(
        self,
        corpus_dir: str | Path | None = None,
        index_dir: str | Path | None = None,
        *,
        model: str | None = None,
        settle: float = 1.0,
        debounce: float = 1.0,
        lock_retry: float = 2.0,
        error_retry: float = 30.0,
        initial_build: bool = True,
        progress: bool = False,
        on_change: StatusCallback | None = None,
        on_report: RebuildCallback | None = None,
    ) -> None:
        corpus = Path(corpus_dir) if corpus_dir is not None else api.default_corpus_dir()
        index = Path(index_dir) if index_dir is not None else api.default_index_dir()
        self.corpus, self.index_dir = corpus, index
        self._corpus_real = Path(os.path.abspath(corpus)).resolve()
        self._index_real = Path(os.path.abspath(index)).resolve()
        self.model = model
        self.settle = settle
        self.debounce = debounce
        self.lock_retry = lock_retry
        self.error_retry = error_retry
        self.initial_build = initial_build
        self.progress = progress
        self.on_change = on_change
        self.on_report = on_report
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._changes = _Changes()
        self._status = WatchStatus(corpus=corpus, index_dir=index)
        self._skipped: set[tuple[str, str]] = set()
        self._thread: threading.Thread | None = None
        self._watching = threading.Event()  # set once the file system watch is in place

    # ------------------------------------------------------------------ public

    @property
    def status(self) -> WatchStatus:
        """The current state (an immutable snapshot; safe to read from any thread)."""
        with self._lock:
            return self._status

    def start(self) -> threading.Thread:
        """Run the watcher in a daemon thread; returns the thread."""
        thread = threading.Thread(target=self.run, name="tpd-qa-watcher", daemon=True)
        self._thread = thread
        thread.start()
        return thread

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the watcher to stop and wait for a thread from :meth:`start` to end.

        A rebuild in progress finishes first (or ``timeout`` runs out)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def run(self, stop_event: threading.Event | None = None) -> Literal["stopped", "interrupted"]:
        """Watch until stopped; returns ``"interrupted"`` after Ctrl-C, else ``"stopped"``.

        Ctrl-C during a rebuild abandons it: the index stays as it was before it.
        """
        if stop_event is not None:
            self._stop = stop_event
        self._watching.clear()
        events = threading.Thread(target=self._collect, name="tpd-qa-watch-events", daemon=True)
        self._set(state="pending" if self.initial_build else "idle")
        events.start()  # before the first build: what changes during it is not missed
        try:
            if self.initial_build:
                self._first_build()
            self._loop()
        except KeyboardInterrupt:
            log.info("watcher interrupted")
            return "interrupted"
        finally:
            self._stop.set()
            self._wake.set()
            events.join(5.0)
            self._set(state="stopped", indexing=0)
        return "stopped"

    # ------------------------------------------------------------------ events

    def _collect(self) -> None:
        """Feed changed paths into ``_changes`` until stopped (runs on its own thread)."""
        from watchfiles import watch

        failures = 0
        while not self._stop.is_set():
            try:
                if failures:  # changes may have been missed while the watch was down
                    self._note([str(self._corpus_real)])
                for batch in watch(
                    self._corpus_real,
                    watch_filter=self._wanted,
                    debounce=max(1, int(self.debounce * 1000)),
                    step=50,
                    rust_timeout=_READY_PROBE_MS,
                    yield_on_timeout=True,  # the first (empty) batch: the watch is in place
                    stop_event=self._stop,
                    raise_interrupt=False,
                ):
                    self._watching.set()
                    failures = 0
                    if batch:
                        self._note(path for _, path in batch)
                return
            except Exception as exc:  # the corpus vanished, too many watches, ...
                self._watching.set()  # do not hold up the first build
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "watching %s failed (%s); trying again", self.corpus, exc)
                self._stop.wait(max(self.lock_retry, 1.0))

    def _wanted(self, change: object, path: str) -> bool:
        return not is_ignored(path, self._corpus_real, self._index_real)

    def _note(self, paths: Iterable[str]) -> None:
        with self._lock:
            for path in paths:
                self._changes.paths[path] = _stamp(path)
            self._changes.last_seen = time.monotonic()
            self._status = replace(self._status, pending=len(self._changes.paths))
            status = self._status
            if status.state == "idle":
                self._status = status = replace(status, state="pending")
        self._notify(status)
        self._wake.set()

    # ------------------------------------------------------------------ rebuilds

    def _first_build(self) -> None:
        # Build once the watch is in place, so that no change falls between the two.
        self._watching.wait(_READY_WAIT)
        while not self._stop.is_set():
            try:
                self._rebuild({}, raise_errors=True)
                return
            except IndexLockedError:
                self._set(state="pending", indexing=0, retry_at=time.time() + self.lock_retry)
                self._stop.wait(self.lock_retry)

    def _loop(self) -> None:
        retry_at: float | None = None  # time.monotonic() of the next try after a failure
        while not self._stop.is_set():
            delay = self._due(retry_at)
            if delay > 0:
                self._wake.wait(min(delay, 1.0))
                self._wake.clear()
                continue
            with self._lock:
                trigger = self._changes.paths
                self._changes = _Changes()
            outcome = self._rebuild(trigger)
            if outcome == "ok":
                retry_at = None
            else:
                wait = self.lock_retry if outcome == "locked" else self.error_retry
                retry_at = time.monotonic() + wait

    def _due(self, retry_at: float | None) -> float:
        """Seconds until a rebuild is due (0: now; a large number: nothing to do)."""
        with self._lock:
            changes = self._changes
            if not changes.paths:
                if self._status.state == "pending":
                    self._status = replace(self._status, state="idle", pending=0)
                return 3600.0
            now = time.monotonic()
            if retry_at is not None and now < retry_at:
                return retry_at - now
            quiet = now - changes.last_seen
            if quiet < self.settle:
                return self.settle - quiet
            unstable = [p for p, stamp in changes.paths.items() if _stamp(p) != stamp]
            if unstable:  # written to without an event yet: wait another settle time
                for path in unstable:
                    changes.paths[path] = _stamp(path)
                changes.last_seen = now
                return self.settle
            return 0.0

    def _rebuild(
        self, trigger: dict[str, _Stamp], *, raise_errors: bool = False
    ) -> Literal["ok", "locked", "failed"]:
        """Run one rebuild for the changed paths ``trigger`` and report it; on failure the
        paths wait for the retry. ``raise_errors`` for the first build."""
        sources = tuple(sorted(self._relative(path) for path in trigger))
        with self._lock:
            number = self._status.rebuilds + 1
        self._set(state="indexing", indexing=len(trigger), pending=self._pending())
        started = time.time()
        try:
            report = api.build_index(
                self.corpus, self.index_dir, model=self.model, progress=self.progress
            )
        except IndexLockedError as exc:
            if raise_errors:
                raise
            log.info("index %s is locked by another rebuild; retrying: %s", self.index_dir, exc)
            pending = self._put_back(trigger)
            retry_at = time.time() + self.lock_retry
            self._set(state="pending", indexing=0, pending=pending, retry_at=retry_at)
            return "locked"
        except (TpdQaError, OSError) as exc:
            if raise_errors:
                raise
            log.warning("rebuild of %s failed: %s", self.index_dir, _reason(exc))
            self._failed(number, started, trigger, _reason(exc))
            return "failed"
        except Exception as exc:  # a bug must not end the watcher
            if raise_errors:
                raise
            log.exception("rebuild of %s failed", self.index_dir)
            self._failed(number, started, trigger, f"unexpected {type(exc).__name__}: {exc}")
            return "failed"
        rebuild = Rebuild(
            number, started, time.time(), sources, report, skipped=self._news(report, sources)
        )
        pending = self._pending()
        self._set(
            state="pending" if pending else "idle",
            pending=pending,
            indexing=0,
            rebuilds=number,
            last_rebuild=rebuild,
            last_success=rebuild.finished,
            last_error="",
            retry_at=None,
        )
        self._report(rebuild)
        return "ok"

    def _failed(self, number: int, started: float, trigger: dict[str, _Stamp], reason: str) -> None:
        sources = tuple(sorted(self._relative(path) for path in trigger))
        rebuild = Rebuild(number, started, time.time(), sources, error=reason)
        self._set(
            state="pending",
            indexing=0,
            pending=self._put_back(trigger),
            rebuilds=number,
            last_rebuild=rebuild,
            last_error=reason,
            retry_at=time.time() + self.error_retry,
        )
        self._report(rebuild)

    def _put_back(self, trigger: dict[str, _Stamp]) -> int:
        """Return the paths of a rebuild that did not happen to the pending ones."""
        with self._lock:
            for path, stamp in trigger.items():
                self._changes.paths.setdefault(path, stamp)
            return len(self._changes.paths)

    def _news(self, report: BuildReport, sources: tuple[str, ...]) -> tuple[FileOutcome, ...]:
        """The skipped outcomes worth telling: new, changed, or skipped for a new reason."""
        touched = set(sources)
        skipped = report.skipped
        news = tuple(
            o
            for o in skipped
            if (o.source, o.reason) not in self._skipped
            or o.source in touched
            or any(o.source.startswith(f"{s}/") for s in touched)
        )
        self._skipped = {(o.source, o.reason) for o in skipped}
        return news

    # ------------------------------------------------------------------ plumbing

    def _relative(self, path: str) -> str:
        try:
            return PurePath(path).relative_to(self._corpus_real).as_posix() or "."
        except ValueError:
            return path

    def _pending(self) -> int:
        with self._lock:
            return len(self._changes.paths)

    def _set(self, **changes: object) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)  # type: ignore[arg-type]
            status = self._status
        self._notify(status)

    def _notify(self, status: WatchStatus) -> None:
        _call_back(self.on_change, status, "on_change")

    def _report(self, rebuild: Rebuild) -> None:
        _call_back(self.on_report, rebuild, "on_report")


def _call_back(callback: Callable[[T], object] | None, value: T, name: str) -> None:
    """Call a caller's callback; its failure is logged and never stops the watching."""
    if callback is None:
        return
    try:
        callback(value)
    except Exception:
        log.exception("%s callback failed", name)


def _stamp(path: str) -> _Stamp:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, TpdQaError):
        what = f"{exc.filename}: " if exc.filename else ""
        return f"{what}{exc.strerror or type(exc).__name__}"
    return str(exc) or type(exc).__name__
