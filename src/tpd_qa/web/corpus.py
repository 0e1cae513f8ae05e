"""Changing the corpus from the page: rebuild the index, add uploaded files.

One change at a time (a lock); questions keep being answered by the old index until the
new one is loaded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from tpd_qa.errors import TpdQaError, UploadError
from tpd_qa.ingest import SUPPORTED_SUFFIXES
from tpd_qa.records import BuildReport
from tpd_qa.uploads import MAX_FILES_PER_UPLOAD, read_upload, store_upload
from tpd_qa.web import views
from tpd_qa.web.state import Progress, ServingState

__all__ = ["UPLOAD_HINT", "CorpusEditor"]

log = logging.getLogger(__name__)

UPLOAD_HINT = "Supported: " + ", ".join(sorted(s[1:].upper() for s in SUPPORTED_SUFFIXES))


class CorpusEditor:
    """The Documents tab's actions; each returns HTML for the page and never raises."""

    def __init__(self, state: ServingState, *, allow_upload: bool) -> None:
        self._state = state
        self.allow_upload = allow_upload
        self._lock = threading.Lock()

    def rebuild(self, on_progress: Progress | None = None) -> str:
        """Run the incremental rebuild (as ``tpd-qa index``), then switch to the new index."""
        with self._lock:
            try:
                report = self._state.build(on_progress)
            except TpdQaError as exc:
                return views.render_state("error", "The rebuild failed", views.error_message(exc))
            except Exception:
                log.exception("rebuild failed")
                return views.render_state(
                    "error", "The rebuild failed", "Unexpected error; details are in the log."
                )
            self._state.load()
            return views.render_report(report)

    def upload(
        self,
        paths: Sequence[str | Path] | str | Path | None,
        on_progress: Progress | None = None,
    ) -> str:
        """Add uploaded files to the corpus and index them (only with ``allow_upload``)."""
        if not self.allow_upload:
            return views.render_state(
                "error",
                "Uploads are disabled",
                "This server was started without --allow-upload; no file was stored.",
            )
        if isinstance(paths, (str, Path)):
            paths = [paths]
        files = [Path(p) for p in (paths or []) if p]
        if not files:
            return views.render_state("hint", "Choose files first", UPLOAD_HINT)
        if len(files) > MAX_FILES_PER_UPLOAD:
            return views.render_state(
                "error",
                "Too many files",
                f"Upload at most {MAX_FILES_PER_UPLOAD} files at a time.",
            )
        with self._lock:
            index = self._state.index
            known = {d.sha256: d.source for d in index.documents()} if index else {}
            accepted: list[tuple[str, str]] = []
            refused: list[tuple[str, str]] = []
            for path in files:
                try:
                    data = read_upload(path)
                    stored = store_upload(self._state.corpus_dir, path.name, data, known=known)
                except UploadError as exc:
                    refused.append((path.name, views.error_message(exc)))
                    continue
                known[stored.sha256] = stored.name
                accepted.append((path.name, stored.name))
            report: BuildReport | None = None
            if accepted:
                try:
                    report = self._state.build(on_progress)
                except TpdQaError as exc:
                    failure = f"stored, but the rebuild failed: {views.error_message(exc)}"
                    refused.append(("(indexing)", failure))
                self._state.load()
            return views.render_upload(accepted, refused, report)
