"""Which folders an index may live in, and what in them tpd_qa may create or delete.

A folder is ours when it carries :data:`MARKER` (or, for indexes saved before the marker
existed, a manifest an earlier tpd_qa wrote); nothing is written to any other non-empty
folder, and only names ``store`` creates are ever deleted.

Entries of an index folder: the marker, ``manifest.json``, ``.lock``, ``gen-*``
generations, and ``ocr-cache/`` (OCR readings of scanned pages by page-image hash,
:data:`tpd_qa.ingest.ocr.CACHE_DIR_NAME`). Clean-up removes only exact generation,
staging and temporary-manifest names, so the OCR cache survives every rebuild, a model
change and ``--full``; deleting it by hand is safe (pages are read again).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from tpd_qa.errors import ConfigError, IndexLockedError

__all__ = ["MARKER", "PAGE_CACHE", "check_folders", "claim_index_dir", "index_lock"]

#: The file that makes a folder recognisably a tpd-qa index: nothing is ever replaced or
#: deleted in a folder without it (or, for indexes saved before it existed, a manifest).
MARKER = ".tpd-qa-index"
_MARKER_TEXT = (
    "This folder is a tpd-qa index. tpd-qa only ever deletes what it created here:\n"
    "gen-<timestamp>-<pid>-<n> folders, their .partial staging folders and temporary\n"
    "manifest files. page-cache/ holds rendered pages and may be deleted at any time.\n"
    "ocr-cache/ holds OCR readings of scanned pages; it is kept\n"
    "across rebuilds and may be deleted by hand (pages are then read again).\n"
)
#: The folder in an index folder where rendered PDF pages are cached (never cleaned up by
#: ``save``; safe to delete).
PAGE_CACHE = "page-cache"
# Exactly the names ``save`` creates; anything else in the folder is never touched.
_GENERATION_NAME = re.compile(r"gen-\d{8}T\d{6}-\d+-\d{6}")
_STAGING_NAME = re.compile(r"\.gen-\d{8}T\d{6}-\d+-\d{6}\.partial")
_MANIFEST_TEMP_NAME = re.compile(r"\.manifest\.json\.\d+\.tmp")
# Entries an unclaimed folder may hold and still be taken as empty (our own lock file).
_HARMLESS = frozenset({".lock"})


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _fsync_dir(path.parent)


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk."""
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for path in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_stale(directory: Path, *, keep: str) -> None:
    """Delete generations and temporary files that the manifest does not point to.

    Only in a folder carrying our marker, and only entries whose names are exactly those
    ``save`` creates (a generation or staging folder, a temporary manifest file): a user's
    ``gen-notes/`` or ``gen-ai-policy.txt`` is never touched.
    """
    if not (directory / MARKER).is_file():
        return
    for path in directory.iterdir():
        name = path.name
        is_dir = path.is_dir() and not path.is_symlink()
        if (
            is_dir
            and name != keep
            and (_GENERATION_NAME.fullmatch(name) or _STAGING_NAME.fullmatch(name))
        ):
            shutil.rmtree(path, ignore_errors=True)
        elif not is_dir and _MANIFEST_TEMP_NAME.fullmatch(name):
            with contextlib.suppress(OSError):
                path.unlink()


def _is_our_manifest(path: Path) -> bool:
    """A manifest that an earlier tpd_qa (before the marker existed) wrote."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(manifest, dict)
        and "tpd_qa_version" in manifest
        and "format_version" in manifest
        and _GENERATION_NAME.fullmatch(str(manifest.get("generation", ""))) is not None
    )


def claim_index_dir(directory: Path) -> None:
    """Make sure ``directory`` is ours to write to, creating and marking it if needed.

    A folder is ours when it carries the marker file, holds a manifest an earlier
    tpd_qa wrote, or is empty. Anything else (someone's project folder, a web app
    with its own ``manifest.json``) is refused before a single file is written.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is a file, not a folder", remedy="choose_index")
    if (directory / MARKER).is_file():
        return
    if directory.is_dir():
        entries = {entry.name for entry in directory.iterdir()} - _HARMLESS
        ours = "manifest.json" in entries and _is_our_manifest(directory / "manifest.json")
        if entries and not ours:
            raise ConfigError(
                f"{directory} is not a tpd-qa index folder and is not empty",
                remedy="choose_index",
            )
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(directory / MARKER, _MARKER_TEXT)


def check_folders(corpus: Path, index_dir: Path) -> None:
    """Refuse a corpus and index that are one folder, or a corpus inside the index.

    An index inside the corpus is fine (discovery skips it); the other way round a
    rebuild would index its own files and clean-up could reach the user's documents.
    """
    corpus, index_dir = Path(corpus), Path(index_dir)
    if corpus.exists() and not corpus.is_dir():
        raise ConfigError(f"corpus {corpus} is a file, not a folder", remedy="choose_corpus")
    if not corpus.exists():
        raise ConfigError(f"corpus folder {corpus} does not exist", remedy="choose_corpus")
    if index_dir.exists() and not index_dir.is_dir():
        raise ConfigError(f"{index_dir} is a file, not a folder", remedy="choose_index")
    real_corpus, real_index = corpus.resolve(), index_dir.resolve()
    if real_corpus == real_index:
        raise ConfigError(
            f"the corpus and the index are the same folder ({corpus})", remedy="choose_index"
        )
    if real_index in real_corpus.parents:
        raise ConfigError(
            f"the corpus {corpus} is inside the index folder {index_dir}", remedy="choose_index"
        )


@contextlib.contextmanager
def index_lock(directory: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the index's rebuild lock; raises IndexLockedError if another process holds it."""
    from filelock import FileLock, Timeout

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(directory / ".lock"), timeout=wait)
    try:
        lock.acquire()
    except Timeout as exc:
        raise IndexLockedError(
            f"another `tpd-qa index` is rebuilding {directory}", remedy="wait"
        ) from exc
    try:
        yield
    finally:
        lock.release()
