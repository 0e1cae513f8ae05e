"""The index: a searchable, savable collection of chunked and embedded documents.

:class:`Index` is the facade; the work is done by the modules beside it, every arrow
pointing one way (``__init__`` -> ``store``, ``sync``, ``search`` -> ``state``)::

    state    what an index holds: settings, stored documents, rows, vectors, file stats
    sync     state + corpus -> next state + BuildReport (scan, change set, vector reuse)
    executor change set -> chunks + vectors, in this process (the default)
    cluster  the same on a Ray cluster (an actor pool; ``ray`` imported only when used)
    search   state -> Searcher (dense + keyword search, fusion, filters, overlap removal)
    store    state <-> disk behind the IndexStore interface (generations, manifest, lock)
    milvus   the Milvus backend: a store and a candidate source (pymilvus loaded lazily)
    folder   which folders may hold an index and what in them may be deleted
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from tpd_qa.chunking import Chunker
from tpd_qa.embedding import Embedder, canonical_model_name, embed_queries, make_embedder
from tpd_qa.errors import (
    ConfigError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    QueryError,
)
from tpd_qa.index.executor import Executor, ProgressCallback, make_chunker
from tpd_qa.index.folder import MARKER, PAGE_CACHE, check_folders, claim_index_dir
from tpd_qa.index.milvus import MilvusStore, milvus_uri
from tpd_qa.index.search import QueryVectors, Searcher
from tpd_qa.index.state import (
    IndexSettings,
    IndexState,
    SearchSettings,
    Snapshot,
)
from tpd_qa.index.store import (
    FORMAT_VERSION,
    DirectoryStore,
    IndexStore,
    index_lock,
    read_manifest,
    remove_debris,
)
from tpd_qa.index.sync import Syncer
from tpd_qa.ingest import OcrOptions
from tpd_qa.limits import MAX_QUESTION_CHARS
from tpd_qa.modes import BACKENDS, MODES, Backend, normalise_mode
from tpd_qa.query import Query, clean_question
from tpd_qa.records import BuildReport, Chunk, Document, DocumentInfo, Passage
from tpd_qa.reranking import Reranker

if TYPE_CHECKING:
    from typing import Unpack  # Python 3.11; annotations are not evaluated at run time

__all__ = [
    "BACKENDS",
    "FORMAT_VERSION",
    "MARKER",
    "MAX_QUESTION_CHARS",
    "MODES",
    "PAGE_CACHE",
    "DirectoryStore",
    "Executor",
    "Index",
    "IndexSettings",
    "IndexState",
    "IndexStore",
    "LoadOptions",
    "ProgressCallback",
    "QueryVectors",
    "SearchSettings",
    "Searcher",
    "Snapshot",
    "UpdateOptions",
    "check_folders",
    "claim_index_dir",
    "index_lock",
    "normalise_mode",
    "open_store",
    "stored_backend",
    "read_manifest",
    "remove_debris",
]


class UpdateOptions(TypedDict, total=False):
    """How :meth:`Index.update` (and :meth:`Index.build`) reads the corpus; see there."""

    exclude: Sequence[Path]
    progress: bool
    on_progress: ProgressCallback | None
    ocr: OcrOptions | None
    executor: Executor | None


class LoadOptions(TypedDict, total=False):
    """How :meth:`Index.load` (and :meth:`Index.load_from`) opens an index; see there."""

    embedder: Embedder | None
    model: str | None
    search_settings: SearchSettings | None
    embedder_factory: Callable[[str], Embedder]
    verify: bool
    reranker: Reranker | None


class Index:
    """An in-memory searchable index over a corpus, loadable from and savable to disk."""

    def __init__(
        self,
        *,
        settings: IndexSettings,
        search_settings: SearchSettings | None = None,
        embedder: Embedder | None = None,
        embedder_factory: Callable[[str], Embedder] = make_embedder,
        reranker: Reranker | None = None,
    ) -> None:
        self.settings = settings
        self._embedder_factory = embedder_factory
        self._embedder = embedder
        self._search_settings = search_settings or SearchSettings()
        self._reranker = reranker
        self._chunker_record: dict[str, Any] = settings.chunker.to_dict()
        self._sparse_record: dict[str, Any] = settings.sparse.to_dict()
        self._queries = QueryVectors(lambda texts: embed_queries(self.embedder, texts))
        self._use(IndexState(dimension=embedder.dimension if embedder else None))

    def _use(self, state: IndexState) -> None:
        self._state = state
        self._searcher = Searcher(state, self._search_settings, self._queries, self._reranker)

    # ------------------------------------------------------------------ properties

    @property
    def state(self) -> IndexState:
        """What the index holds now (replaced, not changed, by ``update``)."""
        return self._state

    @property
    def searcher(self) -> Searcher:
        """The searcher over the current state (what ``search`` uses after validating)."""
        return self._searcher

    @property
    def search_settings(self) -> SearchSettings:
        return self._search_settings

    @search_settings.setter
    def search_settings(self, settings: SearchSettings) -> None:
        self._search_settings = settings
        self._use(self._state)

    @property
    def reranker(self) -> Reranker | None:
        """The cross-encoder that re-scores the best hybrid candidates (None: no third stage)."""
        return self._reranker

    @reranker.setter
    def reranker(self, reranker: Reranker | None) -> None:
        self._reranker = reranker
        self._use(self._state)

    @property
    def model_name(self) -> str:
        return self._embedder.name if self._embedder else canonical_model_name(self.settings.model)

    @property
    def embedder(self) -> Embedder:
        """The embedder, created on first use (keyword-only searches never load a model)."""
        if self._embedder is None:
            self._embedder = self._embedder_factory(self.settings.model)
            dimension = self._state.dimension
            if dimension is not None and self._embedder.dimension != dimension:
                raise IndexMismatchError(
                    f"model {self._embedder.name} has dimension {self._embedder.dimension}, "
                    f"the index has {dimension}",
                    remedy="rebuild_full",
                )
        return self._embedder

    @property
    def chunk_count(self) -> int:
        return len(self._state.chunks)

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything ``save`` would write differently: documents, names and file stats.

        Equal before and after an ``update`` means saving again would change nothing.
        """
        return self._state.fingerprint()

    def documents(self) -> list[DocumentInfo]:
        """The indexed documents, in source order."""
        return self._state.document_infos()

    def document(self, source: str) -> Document:
        """The indexed document with this source path (or duplicate path)."""
        stored = self._state.find(source)
        if stored is None:
            raise QueryError(f"no indexed document {source!r}")
        return stored.document

    def chunks(self) -> list[Chunk]:
        """All chunks, in row order."""
        return list(self._state.chunks)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        corpus: Path,
        *,
        embedder_factory: Callable[[str], Embedder] = make_embedder,
        settings: IndexSettings | None = None,
        embedder: Embedder | None = None,
        **options: Unpack[UpdateOptions],
    ) -> tuple[Index, BuildReport]:
        """Index every supported file under ``corpus`` from scratch (``options`` as for
        :meth:`update`)."""
        index = cls(
            settings=settings or IndexSettings(),
            embedder=embedder,
            embedder_factory=embedder_factory,
        )
        return index, index.update(corpus, full=True, **options)

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Document],
        *,
        embedder_factory: Callable[[str], Embedder] = make_embedder,
        settings: IndexSettings | None = None,
        embedder: Embedder | None = None,
        search_settings: SearchSettings | None = None,
        progress: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Index:
        """Index in-memory documents (e.g. a benchmark corpus); sources and hashes must be unique.

        Documents with no text to index are left out.
        """
        index = cls(
            settings=settings or IndexSettings(),
            embedder=embedder,
            search_settings=search_settings,
            embedder_factory=embedder_factory,
        )
        index._use(index._syncer(progress, on_progress).from_documents(documents))
        return index

    def compatibility(self, settings: IndexSettings) -> str:
        """Why this index cannot be updated incrementally under ``settings`` ('' if it can)."""
        if canonical_model_name(settings.model) != self.model_name:
            return f"model changed ({self.model_name} → {canonical_model_name(settings.model)})"
        if settings.chunker.to_dict() != self._chunker_record:
            return "chunker settings changed"
        if settings.sparse.to_dict() != self._sparse_record:
            return "keyword index settings changed"
        if settings.extraction != self.settings.extraction:
            return "document text extraction changed"
        return ""

    def update(
        self,
        corpus: Path,
        *,
        exclude: Sequence[Path] = (),
        full: bool = False,
        progress: bool = False,
        on_progress: ProgressCallback | None = None,
        ocr: OcrOptions | None = None,
        executor: Executor | None = None,
    ) -> BuildReport:
        """Bring the index up to date with ``corpus``: embed only new and changed documents.

        Unchanged documents (same content hash) keep their chunks and vectors, also when
        the file was renamed; identical copies are indexed once and reported as duplicates.
        A file whose size, times and inode are as when it was last hashed is not read
        again (``full`` re-reads everything); chunks of a changed document whose text is
        unchanged keep their vectors. ``ocr`` says how scanned pages are read (default:
        Tesseract without a cache; ``OcrOptions(enabled=False)`` skips them).
        ``executor`` reads, parses, chunks and embeds the new and changed files (default:
        in this process; see :mod:`tpd_qa.index.cluster`).
        """
        syncer = replace(self._syncer(progress, on_progress, ocr), executor=executor)
        state, report = syncer.update(self._state, corpus, exclude=exclude, full=full)
        self._use(state)
        return report

    def _syncer(
        self,
        progress: bool,
        on_progress: ProgressCallback | None,
        ocr: OcrOptions | None = None,
    ) -> Syncer:
        return Syncer(
            self.settings.sparse,
            embedder=lambda: self.embedder,
            chunker=self._chunker,
            progress=progress,
            on_progress=on_progress,
            ocr=ocr,
            sentences=self.settings.sentences,
        )

    def _chunker(self) -> Chunker:
        return make_chunker(self.settings.chunker, self.embedder)

    # ------------------------------------------------------------------ searching

    def search(
        self,
        question: str,
        k: int = 5,
        *,
        mode: str = "hybrid",
        sources: Iterable[str] | None = None,
    ) -> list[Passage]:
        """The ``k`` best passages for ``question``, best first, without repeated text.

        Raises QueryError for an empty question, a ``k`` below 1 or an unknown mode.
        """
        query = Query.parse(question, k, mode, sources)
        if isinstance(k, str):  # digits typed into a form are the front ends' to parse
            raise QueryError(f"k must be a whole number of at least 1, got {k!r}")
        return self._searcher.search(query)

    def similarity(self, question: str, passages: Sequence[Passage]) -> list[float]:
        """Cosine similarity between the question and each passage's chunk (-1..1).

        Fusion scores only order results; this absolute figure lets a caller say when
        even the best passage is a weak match.
        """
        if not passages:
            return []
        return self._searcher.similarity(clean_question(question), passages)

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path) -> Path:
        """Write the index under ``directory`` atomically; returns the manifest path."""
        store = DirectoryStore(directory)
        self.save_to(store)
        return store.manifest_path

    def save_to(self, store: IndexStore) -> None:
        """Write the index to ``store`` (replacing what it held)."""
        store.save(Snapshot(self.settings, self.model_name, self._state))

    @classmethod
    def load(cls, directory: Path, **options: Unpack[LoadOptions]) -> Index:
        """Load an index saved by ``save``; checks it is complete and fits the model.

        ``model`` (a configured model name) or ``embedder`` must match the model the index
        was built with; with neither, the index's own model is used (loaded lazily).
        A ``reranker`` (:mod:`tpd_qa.reranking`) re-scores the best hybrid candidates.
        """
        return cls.load_from(open_store(directory), **options)

    @classmethod
    def load_from(
        cls,
        store: IndexStore,
        *,
        embedder: Embedder | None = None,
        model: str | None = None,
        search_settings: SearchSettings | None = None,
        embedder_factory: Callable[[str], Embedder] = make_embedder,
        verify: bool = True,
        reranker: Reranker | None = None,
    ) -> Index:
        """Load the index held by ``store``; see :meth:`load`."""
        configured = embedder.name if embedder else canonical_model_name(model) if model else None
        _check_model(*store.model(), configured, embedder)  # before reading any data
        snapshot = store.load(verify=verify)
        # a rebuild may have replaced the index in between: check what was actually read
        _check_model(snapshot.model, snapshot.state.dimension, configured, embedder)
        index = cls(
            settings=snapshot.settings,
            embedder=embedder,
            search_settings=search_settings,
            embedder_factory=embedder_factory,
            reranker=reranker,
        )
        index._chunker_record = dict(snapshot.chunker_record)
        index._sparse_record = dict(snapshot.sparse_record)
        index._use(snapshot.state)
        return index


def stored_backend(directory: Path) -> tuple[Backend, str | None]:
    """The backend (and Milvus URI) recorded in the index in ``directory`` ("local" if none)."""
    try:
        backend = read_manifest(Path(directory)).get("backend")
    except (IndexNotFoundError, IndexCorruptError, IndexMismatchError):
        return "local", None
    if isinstance(backend, dict) and backend.get("kind") == "milvus":
        uri = backend.get("uri")
        return "milvus", str(uri) if uri else None
    return "local", None


def open_store(
    directory: Path, *, backend: str | None = None, uri: str | None = None
) -> IndexStore:
    """The store for the index in ``directory``.

    ``backend`` ("local" or "milvus") defaults to the one recorded in the index; the
    Milvus URI is ``uri``, else ``$TPD_QA_MILVUS_URI``, else the recorded one.
    """
    recorded, recorded_uri = stored_backend(directory)
    chosen = backend or recorded
    if chosen not in BACKENDS:
        raise ConfigError(f"unknown backend {chosen!r}: use {', '.join(BACKENDS)}")
    if chosen == "local":
        return DirectoryStore(directory)
    address = milvus_uri(uri) or recorded_uri
    if address is None:
        raise ConfigError("the Milvus backend needs --milvus-uri or $TPD_QA_MILVUS_URI")
    return MilvusStore(directory, address)


def _check_model(
    built_with: str, dimension: int | None, configured: str | None, embedder: Embedder | None
) -> None:
    """Refuse an index built with another model than the configured one."""
    if configured is not None and configured != built_with:
        raise IndexMismatchError(
            f"index was built with model {built_with}, but {configured} is configured",
            remedy="rebuild",
        )
    if embedder is not None and embedder.dimension != dimension:
        raise IndexMismatchError(
            f"index vectors have dimension {dimension}, model {embedder.name} gives "
            f"{embedder.dimension}",
            remedy="rebuild_full",
        )
