"""Walking a corpus folder: which files are worth reading, which are skipped and why
(hidden entries, excluded folders, links, unsupported types); no file content is read."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tpd_qa.errors import IngestError
from tpd_qa.ingest.formats import format_for
from tpd_qa.ingest.read import os_reason

__all__ = ["Candidate", "discover"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file found by :func:`discover`.

    ``path`` is the absolute path on disk, ``source`` the POSIX path relative to the
    corpus root; ``skip_reason`` is set when the file cannot be indexed for a reason
    already known at discovery time.
    """

    path: Path
    source: str
    skip_reason: str | None = None


# ---------------------------------------------------------------------------------------
# discovery


def discover(corpus: Path, *, exclude: Sequence[Path] = ()) -> list[Candidate]:
    """List the files under ``corpus`` (recursively, sorted by ``source``).

    Hidden files and folders, ``__pycache__`` and the folders in ``exclude`` are ignored
    silently. Symbolic links to folders, links leading outside the corpus, broken links,
    unreadable folders and files of unsupported types are returned with a
    ``skip_reason``. Only directory entries are inspected; no file content is read.
    Raises :class:`IngestError` when ``corpus`` itself is not a readable folder.
    """
    root = Path(os.path.abspath(corpus))
    if not root.is_dir():
        reason = "corpus folder does not exist" if not root.exists() else "corpus is not a folder"
        raise IngestError(reason, str(corpus))
    root_real = root.resolve()
    excluded = {Path(p).resolve() for p in exclude}

    found: list[Candidate] = []
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        folder, rel = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if not rel:
                raise IngestError(
                    f"cannot read corpus folder: {os_reason(exc)}", str(corpus)
                ) from exc
            logger.warning("cannot read folder %s: %s", folder, exc)
            found.append(Candidate(folder, rel, f"cannot read folder: {os_reason(exc)}"))
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            child = Path(entry.path)
            child_rel = f"{rel}/{name}" if rel else name
            try:
                candidate, descend = _classify(entry, child, child_rel, root_real, excluded)
            except OSError as exc:  # e.g. the entry vanished or cannot be stat'ed
                logger.warning("cannot inspect %s: %s", child, exc)
                candidate = Candidate(child, child_rel, f"cannot read file: {os_reason(exc)}")
                descend = False
            if descend:
                stack.append((child, child_rel))
            elif candidate is not None:
                found.append(candidate)
    found.sort(key=lambda c: c.source)
    return found


def _classify(
    entry: os.DirEntry[str], path: Path, rel: str, root_real: Path, excluded: set[Path]
) -> tuple[Candidate | None, bool]:
    """Decide what one directory entry is: (candidate or None, descend into it?)."""
    if entry.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):  # missing target or a link loop
            return Candidate(path, rel, "broken link"), False
        if target.is_dir():
            return Candidate(path, rel, "symbolic link to a directory is not followed"), False
        if not target.is_relative_to(root_real):
            return Candidate(path, rel, "link points outside the corpus"), False
        if target in excluded or any(target.is_relative_to(ex) for ex in excluded):
            return None, False
        return _by_suffix(path, rel), False
    if entry.is_dir(follow_symlinks=False):
        if entry.name == "__pycache__" or path.resolve() in excluded:
            return None, False
        return None, True
    if not entry.is_file(follow_symlinks=False):
        return Candidate(path, rel, "not a regular file"), False
    if path.resolve() in excluded:
        return None, False
    return _by_suffix(path, rel), False


def _by_suffix(path: Path, rel: str) -> Candidate:
    if format_for(path.name) is not None:
        return Candidate(path, rel)
    suffix = path.suffix.lower()
    label = suffix if suffix else "(no extension)"
    return Candidate(path, rel, f"unsupported file type {label}")
