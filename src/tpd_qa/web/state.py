"""The index the web UI serves, and how it is swapped for a newer one.

Serving model: one :class:`~tpd_qa.index.Index` object answers every question. A
rebuild (or an external ``tpd-qa index``) writes a new generation on disk; the new index
is loaded next to the old one, which keeps answering until the new one replaces it in a
single assignment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from tpd_qa.api import build_index, load_index
from tpd_qa.errors import (
    ConfigError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    TpdQaError,
)
from tpd_qa.records import BuildReport, DocumentInfo
from tpd_qa.web.views import error_message

if TYPE_CHECKING:
    from tpd_qa.index import Index

__all__ = ["REBUILD_LOCK_WAIT", "STAGE_NAMES", "Progress", "ProgressPrinter", "ServingState"]

log = logging.getLogger(__name__)

#: How long a rebuild waits for another process's rebuild to release the index lock.
REBUILD_LOCK_WAIT: Final = 2.0
#: What each build stage is called in progress lines and bars.
STAGE_NAMES: Final = {
    "scanning": "Reading files",
    "ocr": "Reading scanned pages (OCR)",
    "embedding": "Embedding passages",
    "sentences": "Embedding sentences",
}
#: A build progress callback: (stage, done, total).
Progress = Callable[[str, int, int], None]


class ServingState:
    """The index answering questions now, where it lives, and why there is none."""

    def __init__(self, corpus_dir: str | Path, index_dir: str | Path, model: str | None) -> None:
        self.corpus_dir = Path(corpus_dir)
        self.index_dir = Path(index_dir)
        self.model = model
        self.index: Index | None = None
        #: Why no index could be loaded (empty while one loads fine).
        self.problem = ""
        self._stamp: tuple[int, int, int] | None = None
        self._reloading = False
        self._reload_guard = threading.Lock()

    def _manifest_stamp(self) -> tuple[int, int, int] | None:
        try:
            info = (self.index_dir / "manifest.json").stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def load(self) -> Index | None:
        """Load the index on disk and switch to it; on failure keep serving the old one."""
        stamp = self._manifest_stamp()
        try:
            index = load_index(self.index_dir, model=self.model)
        except TpdQaError as exc:
            log.warning("cannot load the index: %s", exc)
            self.problem = error_message(exc)
            self._stamp = stamp
            return self.index
        self.index, self._stamp, self.problem = index, stamp, ""
        return index

    def refresh(self) -> None:
        """Pick up an index rebuilt behind our back (e.g. by ``tpd-qa index``).

        With an index already serving, the new one loads in a background thread and
        this request is answered by the old one; without one, it loads now.
        """
        stamp = self._manifest_stamp()
        if stamp is None or stamp == self._stamp:
            return
        if self.index is None:
            self.load()
            return
        with self._reload_guard:
            if self._reloading:
                return
            self._reloading = True
        threading.Thread(target=self._background_load, name="tpd-qa-reload", daemon=True).start()

    def _background_load(self) -> None:
        try:
            self.load()
        finally:
            with self._reload_guard:
                self._reloading = False

    def build(self, on_progress: Progress | None = None) -> BuildReport:
        """Run the incremental rebuild of the corpus (as ``tpd-qa index``); does not switch."""
        return build_index(
            self.corpus_dir,
            self.index_dir,
            model=self.model,
            on_progress=on_progress,
            wait=REBUILD_LOCK_WAIT,
        )

    def ensure_index(self, echo: Callable[[str], None] | None = None) -> BuildReport | None:
        """Load the index, building it first if there is none or it is unusable.

        ``echo`` receives progress lines (e.g. ``print``). Returns the build report,
        or None when an existing index was loaded as it was.
        """
        say = echo or (lambda _line: None)
        try:
            self.index = load_index(self.index_dir, model=self.model)
            self._stamp = self._manifest_stamp()
            return None
        except IndexNotFoundError:
            why = "no index yet"
        except (IndexCorruptError, IndexMismatchError) as exc:
            why = f"the index cannot be used: {error_message(exc)}"
        say(f"Building the index of {self.corpus_dir} into {self.index_dir} ({why})…")
        report = self.build(ProgressPrinter(say))
        for outcome in report.skipped:
            say(f"  skipped {outcome.source}: {outcome.reason}")
        say(
            f"Indexed {report.documents} documents, {report.chunks} passages "
            f"in {report.seconds:.1f} s."
        )
        self.load()
        if self.index is None:
            raise ConfigError(self.problem or "the new index could not be loaded")
        return report

    def documents(self) -> list[DocumentInfo] | None:
        """The indexed documents, or None when there is no index."""
        index = self.index
        return index.documents() if index is not None else None


class ProgressPrinter:
    """Turns build progress callbacks into a few printed lines (each stage, every 25%)."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo
        self._last: tuple[str, int] = ("", -1)

    def __call__(self, stage: str, done: int, total: int) -> None:
        quarter = (4 * done) // total if total else 4
        if (stage, quarter) != self._last:
            self._last = (stage, quarter)
            self._echo(f"  {STAGE_NAMES.get(stage, stage)}: {done}/{total}")
