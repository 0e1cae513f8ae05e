"""The answers to a question as a file to download: Markdown, CSV or JSON.

The formats are :mod:`tpd_qa.export`'s (the same file as ``tpd-qa ask --format``), with a
link per passage that opens it in this web UI. A CSV file starts with a byte-order mark,
so that spreadsheets read it as UTF-8. Each file is written to a private
temporary folder, under a name made from the question; only the newest few are kept
(Gradio copies a file into its own cache when it offers it).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from tpd_qa.errors import TpdQaError
from tpd_qa.export import SUFFIXES, ExportFormat, export, passage_link
from tpd_qa.limits import DEFAULT_K
from tpd_qa.web.asking import Asker, Field

__all__ = ["DOWNLOAD_CHOICES", "KEEP_FILES", "Downloads", "download_name", "page_url"]

#: (label, format) of the download formats offered, the default first.
DOWNLOAD_CHOICES: Final[tuple[tuple[str, ExportFormat], ...]] = (
    ("Markdown", "markdown"),
    ("CSV", "csv"),
    ("JSON", "json"),
)
#: How many written files are kept on disk (older ones are deleted).
KEEP_FILES: Final = 32
_NAME_CHARS: Final = 60
_NOT_WORD = re.compile(r"[\W_]+")


def download_name(question: str, fmt: ExportFormat) -> str:
    """A safe file name for the answers to ``question``: its words (letters and digits
    of any script) joined by dashes, at most 60 characters, e.g.
    ``tpd-qa-who-signed-the-memorandum.md``."""
    words = _NOT_WORD.sub("-", unicodedata.normalize("NFKC", question).lower()).strip("-")
    words = words[:_NAME_CHARS].rstrip("-") or "answers"
    return f"tpd-qa-{words}{SUFFIXES[fmt][0]}"


def page_url(headers: Mapping[str, str]) -> str:
    """The address of the page a request came from (its ``Referer`` without query or
    fragment), to make links absolute; "" when unknown."""
    parts = urlsplit(headers.get("referer", ""))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


class Downloads:
    """Writes answer files for the page's download button."""

    def __init__(self, asker: Asker, keep: int = KEEP_FILES) -> None:
        self._asker = asker
        self._keep = max(1, keep)
        self._folder = tempfile.TemporaryDirectory(prefix="tpd-qa-downloads-")
        self._count = itertools.count()
        self._lock = threading.Lock()

    def answers(
        self,
        question: Field,
        k: Field = DEFAULT_K,
        mode: Field = "hybrid",
        sources: Field = None,
        fmt: ExportFormat = "markdown",
        *,
        base_url: str = "",
    ) -> Path | None:
        """The file of the answers to ``question`` in format ``fmt``; None when there is
        nothing to download (no question, a refused one, no index)."""
        if fmt not in SUFFIXES:
            raise ValueError(f"unknown download format {fmt!r}")
        if question is None or (isinstance(question, str) and not question.strip()):
            return None
        try:
            query, index, passages = self._asker.passages(question, k, mode, sources)
        except TpdQaError:
            return None
        links = []
        for passage in passages:
            sha256 = None
            with contextlib.suppress(TpdQaError):
                sha256 = index.document(passage.source).sha256
            links.append(passage_link(passage, base_url, sha256=sha256))
        content = export(passages, fmt, question=query.question, links=links)
        encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
        return self._write(download_name(query.question, fmt), content, encoding)

    def _write(self, name: str, content: str, encoding: str) -> Path:
        root = Path(self._folder.name)
        with self._lock:
            folder = root / f"{next(self._count):08d}"
            folder.mkdir()
            path = folder / name
            path.write_text(content, encoding=encoding, newline="")
            for old in sorted(root.iterdir())[: -self._keep]:
                shutil.rmtree(old, ignore_errors=True)
        return path
