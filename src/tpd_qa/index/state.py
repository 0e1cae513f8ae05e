"""What an index holds: settings, stored documents, chunk rows with their vectors, file stats.

The leaf of the ``index`` package: ``sync`` turns one :class:`IndexState` into the next,
``search`` answers questions from one, ``store`` writes and reads them. None of them
needs the ``Index`` facade; what used to travel through it (the keyword text of a row,
rebuilding the search structures) is a method here.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tpd_qa.chunking import ChunkerSettings
from tpd_qa.dense import DenseIndex
from tpd_qa.errors import ConfigError
from tpd_qa.ingest.formats import EXTRACTION_VERSION
from tpd_qa.modes import FUSIONS, Fusion
from tpd_qa.records import Chunk, Document, DocumentInfo
from tpd_qa.sentences import SentenceVectors
from tpd_qa.sparse import SparseIndex, SparseSettings

__all__ = [
    "CandidateSource",
    "FileStat",
    "IndexSettings",
    "IndexState",
    "SearchSettings",
    "Snapshot",
    "StoredDocument",
    "displayable",
    "embedding_text",
    "now",
]

#: The context header (title and section) in front of each chunk is cut to this length.
CONTEXT_PREFIX_CHARS = 120


@dataclass(frozen=True, slots=True)
class IndexSettings:
    """What an index is built with; a change of model, chunker or text extraction
    (``extraction``, :data:`tpd_qa.ingest.formats.EXTRACTION_VERSION`) forces a full
    rebuild."""

    model: str = "default"
    chunker: ChunkerSettings = field(default_factory=ChunkerSettings)
    sparse: SparseSettings = field(default_factory=SparseSettings)
    extraction: int = EXTRACTION_VERSION
    #: Embed each answering sentence of each passage as well (:mod:`tpd_qa.sentences`),
    #: for the second stage's ``sentence_cosine``. Roughly doubles embedding work when
    #: indexing; False keeps an index's sentence vectors out (searches then rank without
    #: that feature). Never a reason to rebuild: turning it on embeds the sentences only.
    sentences: bool = True


@dataclass(frozen=True, slots=True)
class SearchSettings:
    """Query-time knobs: candidate depth and how dense and keyword rankings are fused.

    ``fusion`` is ``convex`` (cosine and top-scaled BM25, weighted; the default, tuned on
    SciFact train: bench/tune_fusion.py), ``rrf`` (reciprocal rank fusion with ``rrf_k``)
    or ``weighted`` (min-max scaled scores). The weights apply to whichever is chosen:
    set them equal for plain RRF. Anything else raises ConfigError.
    """

    candidates: int = 100
    fusion: Fusion = "convex"
    rrf_k: float = 60.0
    dense_weight: float = 0.8
    sparse_weight: float = 0.2
    #: Re-score hybrid candidates with the second stage (:mod:`tpd_qa.evidence`);
    #: ``False`` ranks by the fusion above alone.
    evidence: bool = True
    #: With a cross-encoder attached (:mod:`tpd_qa.reranking`), how many of the best
    #: hybrid candidates it re-scores.
    rerank_depth: int = 30
    #: Touching passages (same document, page and section, only whitespace between them)
    #: that both rank among the first ``join_depth`` are shown as one passage, where the
    #: better of them ranked, while the joined text stays within ``join_chars``
    #: characters. ``join_depth`` 0 or 1 shows every passage on its own.
    join_depth: int = 5
    join_chars: int = 1600

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {self.fusion!r}: use {', '.join(FUSIONS)}")
        if self.candidates < 1:
            raise ConfigError(f"candidates must be at least 1, got {self.candidates}")
        if self.rerank_depth < 1:
            raise ConfigError(f"rerank_depth must be at least 1, got {self.rerank_depth}")
        if self.join_depth < 0:
            raise ConfigError(f"join_depth must be 0 or more, got {self.join_depth}")
        if self.join_chars < 0:
            raise ConfigError(f"join_chars must be 0 or more, got {self.join_chars}")


@dataclass(frozen=True, slots=True)
class FileStat:
    """What a corpus file's directory entry said when it was hashed."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    sha256: str

    @classmethod
    def of(cls, info: os.stat_result, sha256: str) -> FileStat:
        return cls(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, sha256)

    def matches(self, info: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode) == (
            info.st_size,
            info.st_mtime_ns,
            info.st_ctime_ns,
            info.st_ino,
        )


@dataclass(slots=True)
class StoredDocument:
    """An indexed document: its chunks are rows ``first_row`` .. ``first_row + chunks - 1``."""

    document: Document
    first_row: int
    chunks: int
    indexed_at: str
    aliases: list[str] = field(default_factory=list)

    @property
    def rows(self) -> range:
        return range(self.first_row, self.first_row + self.chunks)

    def answers_to(self, source: str) -> bool:
        """True when ``source`` is this document's path or one of its duplicates' paths."""
        return self.document.source == source or source in self.aliases


def displayable(source: str) -> str:
    """``source`` with undecodable file-name bytes shown as ``\\xNN`` escapes.

    A file name that is not valid UTF-8 reaches Python with lone surrogates, which
    cannot be written to the index files, printed or sent to a browser.
    """
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        raw = source.encode("utf-8", "surrogateescape")
        return raw.decode("utf-8", "backslashreplace")
    return source


def now() -> str:
    """The current UTC time, to the second, as ISO 8601."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def embedding_text(title: str, section: str | None, text: str) -> str:
    """The text a chunk is embedded and keyword-indexed as: a short context header + body."""
    header = title if not section else f"{title} — {section}"
    return f"{header[:CONTEXT_PREFIX_CHARS]}\n{text}"


class CandidateSource(Protocol):
    """Where a searcher gets each retriever's candidates: (scores, rows), best first.

    The default is the state's own FAISS and bm25s structures (``search.LocalCandidates``);
    a store that searches elsewhere (a Milvus collection) attaches its own to the state.
    ``allowed`` restricts the rows (None: every row).
    """

    def dense(
        self, vector: np.ndarray, depth: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``depth`` rows nearest to ``vector`` (cosine), best first."""
        ...

    def keyword(
        self, question: str, depth: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``depth`` best BM25 rows for ``question`` (positive scores only), best first."""
        ...


def _no_vectors(dimension: int | None = None) -> np.ndarray:
    return np.zeros((0, dimension or 0), dtype=np.float32)


def _no_rows() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(slots=True)
class IndexState:
    """Documents in source order, their chunks as contiguous rows, one vector per row.

    ``row_doc[i]`` is the position in ``docs`` of row ``i``'s document; ``dense`` and
    ``sparse`` are the search structures over the rows (None until built);
    ``file_stats`` remembers each hashed corpus file's directory entry;
    ``dimension`` is the vectors' width once known; ``candidates``, when set, is where
    searches get their candidates instead of ``dense`` and ``sparse`` (a remote store);
    ``sentences`` holds the vectors of every row's answering sentences (None: the index
    has none).
    """

    docs: list[StoredDocument] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=_no_vectors)
    row_doc: np.ndarray = field(default_factory=_no_rows)
    dense: DenseIndex | None = None
    sparse: SparseIndex | None = None
    file_stats: dict[str, FileStat] = field(default_factory=dict)
    dimension: int | None = None
    candidates: CandidateSource | None = None
    sentences: SentenceVectors | None = None

    @property
    def searchable(self) -> bool:
        """True once the dense and keyword structures (or a candidate source) exist."""
        return self.candidates is not None or (self.dense is not None and self.sparse is not None)

    def document_of(self, row: int) -> Document:
        """The document chunk row ``row`` belongs to."""
        return self.docs[int(self.row_doc[row])].document

    def keyword_text(self, row: int) -> str:
        """What row ``row`` was embedded and keyword-indexed as."""
        chunk = self.chunks[row]
        return embedding_text(self.document_of(row).title, chunk.section, chunk.text)

    def find(self, source: str) -> StoredDocument | None:
        """The stored document with this path (or duplicate path), if any."""
        for stored in self.docs:
            if stored.answers_to(source):
                return stored
        return None

    def rows_of(self, sources: Iterable[str]) -> np.ndarray:
        """Rows of the documents with these paths (or duplicate paths), ascending."""
        wanted = set(sources)
        rows = [
            np.arange(d.first_row, d.first_row + d.chunks)
            for d in self.docs
            if d.document.source in wanted or wanted.intersection(d.aliases)
        ]
        return np.concatenate(rows) if rows else _no_rows()

    def document_infos(self) -> list[DocumentInfo]:
        """The indexed documents, in source order, as listings show them."""
        return [
            DocumentInfo(
                source=d.document.source,
                title=d.document.title,
                kind=d.document.kind,
                pages=d.document.pages,
                chunks=d.chunks,
                chars=len(d.document.text),
                indexed_at=d.indexed_at,
                sha256=d.document.sha256,
                duplicates=tuple(d.aliases),
            )
            for d in self.docs
        ]

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything a save would write differently: documents, names, file stats and
        the sentence vectors kept."""
        docs = tuple((d.document.source, d.document.sha256, tuple(d.aliases)) for d in self.docs)
        sentences = None if self.sentences is None else len(self.sentences)
        return docs, tuple(sorted(self.file_stats.items())), sentences

    def rebuild_search(
        self,
        sparse: SparseSettings,
        dense: DenseIndex | None = None,
        previous: SparseIndex | None = None,
    ) -> None:
        """Recompute ``row_doc`` and build the dense and keyword structures over the rows
        (texts the ``previous`` keyword index analysed are not analysed again)."""
        self.row_doc = np.zeros(len(self.chunks), dtype=np.int64)
        for number, stored in enumerate(self.docs):
            self.row_doc[stored.first_row : stored.first_row + stored.chunks] = number
        self.candidates = None
        self.dense = dense or DenseIndex.build(self.vectors)
        self.sparse = SparseIndex.build(
            [self.keyword_text(row) for row in range(len(self.chunks))], sparse, previous
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a store writes and reads back: the settings, the model and the state.

    ``chunker_record`` and ``sparse_record`` are the settings exactly as stored (an
    older index may lack fields a newer ``ChunkerSettings`` has, which then counts as a
    settings change); for a fresh snapshot they are the settings' own records.
    """

    settings: IndexSettings
    model: str
    state: IndexState
    chunker_record: dict[str, Any] = field(default_factory=dict)
    sparse_record: dict[str, Any] = field(default_factory=dict)
