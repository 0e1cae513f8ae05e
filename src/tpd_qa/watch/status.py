"""What a :class:`~tpd_qa.watch.watcher.CorpusWatcher` is doing and what its rebuilds did.

Immutable value objects, safe to hand to another thread: :class:`WatchStatus` (the
watcher's state, with :meth:`WatchStatus.describe` for a one-line display such as
"index updated 12 s ago · 2 added, 1 changed" or "indexing 3 files…") and
:class:`Rebuild` (one rebuild's report, or the error that stopped it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tpd_qa.records import BuildReport, FileOutcome

__all__ = ["CHANGE_KINDS", "Rebuild", "WatchState", "WatchStatus"]

WatchState = Literal["stopped", "idle", "pending", "indexing"]
"""``stopped`` (not running), ``idle`` (index current), ``pending`` (changes seen, waiting
for the files to settle or to retry), ``indexing`` (a rebuild is running)."""

#: The outcomes a rebuild summary counts, in the order they are shown.
CHANGE_KINDS: tuple[str, ...] = ("added", "changed", "renamed", "removed", "duplicate", "skipped")


@dataclass(frozen=True, slots=True)
class Rebuild:
    """One rebuild the watcher ran: its report, or the error that stopped it.

    ``trigger`` holds the corpus-relative paths whose change caused it (empty for the
    first build); ``skipped`` only the skipped files that are news (new, or changed,
    or skipped for a new reason), not every unsupported file on every rebuild.
    """

    number: int
    started: float
    finished: float
    trigger: tuple[str, ...] = ()
    report: BuildReport | None = None
    error: str = ""
    skipped: tuple[FileOutcome, ...] = ()

    @property
    def ok(self) -> bool:
        return self.report is not None

    def files(self, kind: str) -> list[FileOutcome]:
        """The outcomes of ``kind`` (one of :data:`CHANGE_KINDS`)."""
        if kind == "skipped":
            return list(self.skipped)
        return self.report.by_status(kind) if self.report else []

    def counts(self) -> dict[str, int]:
        """Files per kind, only the kinds that occurred, in :data:`CHANGE_KINDS` order."""
        counts = {kind: len(self.files(kind)) for kind in CHANGE_KINDS}
        return {kind: n for kind, n in counts.items() if n}

    @property
    def changed_anything(self) -> bool:
        return bool(self.counts())

    def summary(self) -> str:
        """``2 added, 1 changed``, ``no changes``, or ``failed: <reason>``."""
        if not self.ok:
            return f"failed: {self.error}"
        counts = self.counts()
        return ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "no changes"


@dataclass(frozen=True, slots=True)
class WatchStatus:
    """What the watcher is doing, as one immutable snapshot (times from ``time.time()``)."""

    state: WatchState = "stopped"
    corpus: Path = Path()
    index_dir: Path = Path()
    pending: int = 0
    """Changed paths waiting for the next rebuild."""
    indexing: int = 0
    """Changed paths the running rebuild was started for (0 when not indexing)."""
    rebuilds: int = 0
    """Rebuilds run so far, failed ones included."""
    last_rebuild: Rebuild | None = None
    last_success: float | None = None
    """When the index was last brought up to date."""
    last_error: str = ""
    """Why the last rebuild failed ("" once one succeeds again)."""
    retry_at: float | None = None
    """When a failed or locked-out rebuild will be tried again."""

    def describe(self, now: float | None = None) -> str:
        """One line for people: ``index updated 12 s ago · 2 added, 1 changed``,
        ``indexing 3 files…``, ``2 changes waiting for files to settle``, …"""
        now = time.time() if now is None else now
        if self.state == "indexing":
            if self.indexing:
                noun = "file" if self.indexing == 1 else "files"
                return f"indexing {self.indexing} {noun}…"
            return "indexing…"
        parts: list[str] = []
        if self.state == "stopped":
            parts.append("not watching")
        if self.last_error:
            parts.append(f"last rebuild failed: {self.last_error}")
        elif self.last_success is not None:
            parts.append(f"index updated {_ago(now - self.last_success)}")
            if self.last_rebuild is not None and self.last_rebuild.ok:
                parts.append(self.last_rebuild.summary())
        if self.pending and self.state != "stopped":
            noun = "change" if self.pending == 1 else "changes"
            wait = "retry" if self.retry_at is not None else "files to settle"
            parts.append(f"{self.pending} {noun} waiting for {wait}")
        return " · ".join(parts) or ("watching" if self.state != "stopped" else "not watching")


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"
