"""The Python API: build and query indexes by directory, with loaded indexes cached."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from tpd_qa.embedding import Embedder, canonical_model_name, make_embedder
from tpd_qa.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    SourceError,
)
from tpd_qa.index import (
    PAGE_CACHE,
    Index,
    IndexSettings,
    ProgressCallback,
    UpdateOptions,
    check_folders,
    claim_index_dir,
    index_lock,
    open_store,
    read_manifest,
    remove_debris,
)
from tpd_qa.index.cluster import RayExecutor
from tpd_qa.ingest import OCR_CACHE_DIR_NAME, OcrOptions
from tpd_qa.limits import MAX_QUESTION_CHARS
from tpd_qa.pages import DEFAULT_SCALE, Box, PageCache, PageImage, render, source_path
from tpd_qa.pages import highlight_boxes as _boxes
from tpd_qa.records import BuildReport, Document, DocumentInfo, Passage
from tpd_qa.reranking import Reranker, configured_reranker, load_reranker

if TYPE_CHECKING:
    from typing import Unpack  # Python 3.11; annotations are not evaluated at run time

__all__ = [
    "MAX_QUESTION_CHARS",
    "retrieve",
    "build_index",
    "load_index",
    "list_documents",
    "default_corpus_dir",
    "default_index_dir",
    "configured_model",
    "highlight_boxes",
    "open_source",
    "page_image",
    "render_page",
]

log = logging.getLogger(__name__)

_lock = threading.RLock()
_LOAD_ATTEMPTS = 5  # a rebuild may replace the index while it is being loaded
_indexes: dict[tuple[Path, str], tuple[tuple[int, int, str], Index]] = {}
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


def _reranker(reranker: str | Path | Reranker | None) -> Reranker | None:
    """A reranker object from a folder path; None means ``$TPD_QA_RERANKER`` (if set)."""
    if reranker is None:
        return configured_reranker()
    if isinstance(reranker, (str, Path)):
        return load_reranker(reranker)
    return reranker


def load_index(
    index_dir: str | Path | None = None,
    *,
    model: str | None = None,
    reranker: str | Path | Reranker | None = None,
) -> Index:
    """The index in ``index_dir``, loaded once and reloaded when a rebuild replaces it.

    ``reranker`` is a local CrossEncoder folder (or any :class:`~tpd_qa.reranking.Reranker`)
    that re-scores the best hybrid candidates; by default ``$TPD_QA_RERANKER``, if set.
    """
    directory = Path(index_dir) if index_dir is not None else default_index_dir()
    model = model or configured_model()
    third = _reranker(reranker)
    key = (directory.resolve(), third.name if third is not None else "")
    with _lock:
        for attempt in range(_LOAD_ATTEMPTS):
            stamp = _stamp(directory)
            cached = _indexes.get(key)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            try:
                index = Index.load(
                    directory, model=model, embedder_factory=shared_embedder, reranker=third
                )
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
    reranker: str | Path | Reranker | None = None,
) -> list[Passage]:
    """The ``k`` passages that best answer ``question``, best first, each with a citation.

    ``mode`` is ``hybrid`` (default), ``dense`` or ``bm25``; ``sources`` limits the
    search to documents with those corpus-relative paths. ``reranker`` (a local
    sentence-transformers CrossEncoder folder; default ``$TPD_QA_RERANKER``) re-scores
    the best hybrid candidates.
    """
    return load_index(index_dir, reranker=reranker).search(question, k, mode=mode, sources=sources)


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
    backend: str | None = None,
    milvus_uri: str | None = None,
    ocr: bool = True,
    ray: str | None = None,
    ray_workers: int | None = None,
    sentences: bool | None = None,
) -> BuildReport:
    """(Re)build the index of ``corpus_dir`` into ``index_dir``, incrementally.

    Only new and changed documents are embedded; a different model or chunker, a
    damaged previous index, or ``full=True`` rebuilds everything (the report says why).
    Holds a lock so two rebuilds never interleave; ``wait`` is how long to wait for it.
    ``backend`` is ``local`` (FAISS + bm25s in the folder) or ``milvus`` (a Milvus
    collection at ``milvus_uri`` or ``$TPD_QA_MILVUS_URI``); by default the one the
    index was built with. The choice is recorded in the index: queries follow it.

    Scanned PDF pages and images are read by OCR (Tesseract), each page once: readings
    are cached in ``<index_dir>/ocr-cache``; ``ocr=False`` skips scanned files instead.

    ``ray`` (``"local"``, ``"auto"``, ``"ray://HOST:PORT"`` or ``"HOST:PORT"``) reads,
    chunks and embeds the new and changed documents on a Ray cluster, with
    ``ray_workers`` actors (default: one per CPU); needs ``pip install 'tpd-qa[ray]'``.

    ``sentences`` keeps a vector of every answering sentence for the second stage
    (:mod:`tpd_qa.sentences`; about twice the embedding work); None keeps what the
    index has (on for a new index). Switching it on embeds the sentences alone.
    """
    corpus = Path(corpus_dir) if corpus_dir is not None else default_corpus_dir()
    directory = Path(index_dir) if index_dir is not None else default_index_dir()
    settings = IndexSettings(
        model=model or configured_model() or "default",
        sentences=True if sentences is None else sentences,
    )
    reading: UpdateOptions = {
        "exclude": [directory],
        "progress": progress,
        "on_progress": on_progress,
        "ocr": OcrOptions(enabled=ocr, cache_dir=directory / OCR_CACHE_DIR_NAME),
        "executor": (
            RayExecutor(
                settings.model, settings.chunker, ray, workers=ray_workers, progress=progress
            )
            if ray is not None
            else None
        ),
    }
    check_folders(corpus, directory)
    claim_index_dir(directory)  # before the lock file is created in it
    store = open_store(directory, backend=backend, uri=milvus_uri)
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
            report = index.update(corpus, full=True, **reading)
            report.full = True
            report.full_reason = reason or ("--full requested" if full else "no previous index")
            index.save_to(store)
        else:
            if sentences is not None:
                previous.settings = replace(previous.settings, sentences=sentences)
            before = previous.fingerprint()
            report = previous.update(corpus, **reading)
            if previous.fingerprint() != before or not _same_store(store, directory):
                previous.save_to(store)
            else:
                remove_debris(directory)
        return report


def _same_store(store: object, directory: Path) -> bool:
    """True when ``store`` is where the index in ``directory`` already lives (same backend)."""
    return type(store) is type(open_store(directory)) and getattr(store, "uri", None) == getattr(
        open_store(directory), "uri", None
    )


def open_source(
    source: str,
    *,
    corpus_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
) -> tuple[Document, Path]:
    """The indexed document ``source`` and its file in the corpus.

    Raises SourceError when ``source`` leads out of the corpus or is not indexed (the file
    itself is checked against the indexed hash when it is read).
    """
    corpus = Path(corpus_dir) if corpus_dir is not None else default_corpus_dir()
    path = source_path(corpus, source)
    index = load_index(index_dir)
    stored = index.state.find(source)
    if stored is None:
        raise SourceError(f"{source!r} is not an indexed document", "missing")
    return stored.document, path


def _cache(index_dir: str | Path | None) -> PageCache:
    directory = Path(index_dir) if index_dir is not None else default_index_dir()
    return PageCache(directory / PAGE_CACHE)


def highlight_boxes(
    passage: Passage,
    *,
    corpus_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
) -> list[Box]:
    """The rectangles (PDF points, per page) covering ``passage``'s characters in its PDF.

    The corpus and index default as for :func:`build_index`. Raises SourceError when the
    file is missing, outside the corpus, not a PDF or changed since it was indexed.
    """
    document, path = open_source(passage.source, corpus_dir=corpus_dir, index_dir=index_dir)
    return _boxes(path, document, passage.start, passage.end)


class PageOptions(TypedDict, total=False):
    """Where a page comes from and how large it is drawn (see :func:`page_image`)."""

    corpus_dir: str | Path | None
    index_dir: str | Path | None
    scale: float


def page_image(
    source: str,
    page: int,
    spans: Sequence[tuple[int, int]] = (),
    *,
    corpus_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    scale: float = DEFAULT_SCALE,
) -> PageImage:
    """Page ``page`` of the indexed PDF ``source`` with the character spans highlighted,
    with its size and the highlight rectangles in pixels (cached in the index folder)."""
    document, path = open_source(source, corpus_dir=corpus_dir, index_dir=index_dir)
    return render(path, document, page, spans, scale=scale, cache=_cache(index_dir))


def render_page(
    source: str,
    page: int,
    spans: Sequence[tuple[int, int]] = (),
    **options: Unpack[PageOptions],
) -> bytes:
    """PNG bytes of page ``page`` (1-based) of the indexed PDF ``source``, the characters
    of each ``(start, end)`` span of the document's text highlighted; ``corpus_dir``,
    ``index_dir`` and ``scale`` as for :func:`page_image`.

    >>> p = retrieve("semiconductors", k=1)[0]  # doctest: +SKIP
    >>> png = render_page(p.source, p.page, [(p.start, p.end)])  # doctest: +SKIP
    """
    return page_image(source, page, spans, **options).png
