"""The Python API: build and query indexes by directory, with loaded indexes cached."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from tpd_qa.embedding import Embedder, canonical_model_name, make_embedder
from tpd_qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from tpd_qa.index import (
    Index,
    IndexSettings,
    ProgressCallback,
    check_folders,
    claim_index_dir,
    index_lock,
    read_manifest,
    remove_debris,
)
from tpd_qa.index.cluster import RayExecutor
from tpd_qa.limits import MAX_QUESTION_CHARS
from tpd_qa.records import BuildReport, DocumentInfo, Passage

__all__ = [
    "MAX_QUESTION_CHARS",
    "retrieve",
    "build_index",
    "load_index",
    "list_documents",
    "default_corpus_dir",
    "default_index_dir",
    "configured_model",
]

log = logging.getLogger(__name__)

_lock = threading.RLock()
_LOAD_ATTEMPTS = 5  # a rebuild may replace the index while it is being loaded
_indexes: dict[Path, tuple[tuple[int, int, str], Index]] = {}
_embedders: dict[str, Embedder] = {}


def default_corpus_dir() -> Path:
    """``$TPD_QA_CORPUS`` or ``./corpus``."""
    return Path(os.environ.get("TPD_QA_CORPUS") or "corpus")


def default_index_dir() -> Path:
    """``$TPD_QA_INDEX`` or ``./index``."""
    return Path(os.environ.get("TPD_QA_INDEX") or "index")


def configured_model() -> str | None:
    """``$TPD_QA_MODEL`` (a sentence-transformers name or path), if set."""
    return os.environ.get("TPD_QA_MODEL") or None


def shared_embedder(model: str) -> Embedder:
    """One embedder per model per process: loading a model takes seconds."""
    name = canonical_model_name(model)
    with _lock:
        embedder = _embedders.get(name)
        if embedder is None:
            embedder = make_embedder(model)
            _embedders[name] = embedder
        return embedder


def _stamp(index_dir: Path) -> tuple[int, int, str]:
    manifest = index_dir / "manifest.json"
    try:
        stat = manifest.stat()
    except FileNotFoundError:
        raise IndexNotFoundError(f"no index in {index_dir}", remedy="build") from None
    return (stat.st_mtime_ns, stat.st_size, str(stat.st_ino))


def load_index(index_dir: str | Path | None = None, *, model: str | None = None) -> Index:
    """The index in ``index_dir``, loaded once and reloaded when a rebuild replaces it."""
    directory = Path(index_dir) if index_dir is not None else default_index_dir()
    key = directory.resolve()
    model = model or configured_model()
    with _lock:
        for attempt in range(_LOAD_ATTEMPTS):
            stamp = _stamp(directory)
            cached = _indexes.get(key)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            try:
                index = Index.load(directory, model=model, embedder_factory=shared_embedder)
            except IndexCorruptError:
                # A rebuild that commits while we read deletes the generation we were
                # reading: that is not damage. Read the new manifest and try again.
                if attempt + 1 < _LOAD_ATTEMPTS and _stamp(directory) != stamp:
                    log.info("index %s was replaced while loading; reloading", directory)
                    continue
                raise
            _indexes[key] = (stamp, index)
            return index
        raise AssertionError("unreachable")  # pragma: no cover


def retrieve(
    question: str,
    k: int = 5,
    *,
    index_dir: str | Path | None = None,
    mode: str = "hybrid",
    sources: Iterable[str] | None = None,
) -> list[Passage]:
    """The ``k`` passages that best answer ``question``, best first, each with a citation.

    ``mode`` is ``hybrid`` (default), ``dense`` or ``bm25``; ``sources`` limits the
    search to documents with those corpus-relative paths.
    """
    return load_index(index_dir).search(question, k, mode=mode, sources=sources)


def list_documents(index_dir: str | Path | None = None) -> list[DocumentInfo]:
    """The documents in the index."""
    return load_index(index_dir).documents()


def build_index(
    corpus_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    *,
    full: bool = False,
    model: str | None = None,
    progress: bool = False,
    on_progress: ProgressCallback | None = None,
    wait: float = 0.0,
    ray: str | None = None,
    ray_workers: int | None = None,
) -> BuildReport:
    """(Re)build the index of ``corpus_dir`` into ``index_dir``, incrementally.

    Only new and changed documents are embedded; a different model or chunker, a
    damaged previous index, or ``full=True`` rebuilds everything (the report says why).
    Holds a lock so two rebuilds never interleave; ``wait`` is how long to wait for it.

    ``ray`` (``"local"``, ``"auto"``, ``"ray://HOST:PORT"`` or ``"HOST:PORT"``) reads,
    chunks and embeds the new and changed documents on a Ray cluster, with
    ``ray_workers`` actors (default: one per CPU); needs ``pip install 'tpd-qa[ray]'``.
    """
    corpus = Path(corpus_dir) if corpus_dir is not None else default_corpus_dir()
    directory = Path(index_dir) if index_dir is not None else default_index_dir()
    settings = IndexSettings(model=model or configured_model() or "default")
    exclude = [directory]
    executor = (
        RayExecutor(settings.model, settings.chunker, ray, workers=ray_workers, progress=progress)
        if ray is not None
        else None
    )
    check_folders(corpus, directory)
    claim_index_dir(directory)  # before the lock file is created in it
    with index_lock(directory, wait=wait):
        previous: Index | None = None
        reason = ""
        try:
            read_manifest(directory)
            previous = Index.load(directory, embedder_factory=shared_embedder)
            reason = previous.compatibility(settings)
        except IndexNotFoundError:
            pass
        except (IndexCorruptError, IndexMismatchError) as exc:
            reason = f"previous index unusable: {exc}"
        if previous is None or reason or full:
            index = Index(settings=settings, embedder_factory=shared_embedder)
            report = index.update(
                corpus,
                exclude=exclude,
                full=True,
                progress=progress,
                on_progress=on_progress,
                executor=executor,
            )
            report.full = True
            report.full_reason = reason or ("--full requested" if full else "no previous index")
            index.save(directory)
        else:
            before = previous.fingerprint()
            report = previous.update(
                corpus,
                exclude=exclude,
                progress=progress,
                on_progress=on_progress,
                executor=executor,
            )
            if previous.fingerprint() != before:
                previous.save(directory)
            else:
                remove_debris(directory)
        return report
