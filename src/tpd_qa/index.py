"""The index: composes ingestion, chunking, embedding, dense and sparse search, and fusion.

On disk an index is a directory::

    manifest.json          the commit point: format, model, settings, documents, file checksums
    gen-<id>/documents.jsonl   one document per line: source, title, kind, text, pages, headings
    gen-<id>/chunks.jsonl      one chunk per line: document row, start, end, page, section
    gen-<id>/vectors.npy       float32 (chunks x dimension), row i is chunk i
    gen-<id>/files.jsonl       size, times and inode of each hashed corpus file (skip re-hashing)
    gen-<id>/dense.faiss       FAISS graph index (only for large collections)
    gen-<id>/sparse/           BM25 matrices (.npy) and vocabulary (.json)

A save writes a new generation directory, then atomically replaces ``manifest.json``;
a crash at any moment leaves the previous manifest and generation intact.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tpd_qa.chunking import Chunker, ChunkerSettings
from tpd_qa.dense import DenseIndex
from tpd_qa.embedding import Embedder, canonical_model_name, make_embedder
from tpd_qa.errors import (
    ConfigError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    IngestError,
    QueryError,
)
from tpd_qa.fusion import convex_fusion, reciprocal_rank_fusion, weighted_fusion
from tpd_qa.ingest import content_hash, discover, parse, read_file
from tpd_qa.records import (
    BuildReport,
    Chunk,
    Document,
    DocumentInfo,
    FileOutcome,
    Heading,
    Passage,
)
from tpd_qa.sparse import SparseIndex, SparseSettings
from tpd_qa.version import __version__

__all__ = [
    "FORMAT_VERSION",
    "MARKER",
    "claim_index_dir",
    "check_folders",
    "MODES",
    "Index",
    "IndexSettings",
    "SearchSettings",
    "index_lock",
    "remove_debris",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: The file that makes a folder recognisably a tpd-qa index: nothing is ever replaced or
#: deleted in a folder without it (or, for indexes saved before it existed, a manifest).
MARKER = ".tpd-qa-index"
_MARKER_TEXT = (
    "This folder is a tpd-qa index. tpd-qa only ever deletes what it created here:\n"
    "gen-<timestamp>-<pid>-<n> folders, their .partial staging folders and temporary\n"
    "manifest files.\n"
)
# Exactly the names ``save`` creates; anything else in the folder is never touched.
_GENERATION_NAME = re.compile(r"gen-\d{8}T\d{6}-\d+-\d{6}")
_STAGING_NAME = re.compile(r"\.gen-\d{8}T\d{6}-\d+-\d{6}\.partial")
_MANIFEST_TEMP_NAME = re.compile(r"\.manifest\.json\.\d+\.tmp")
# Entries an unclaimed folder may hold and still be taken as empty (our own lock file).
_HARMLESS = frozenset({".lock"})
MODES = ("hybrid", "dense", "bm25")
_MODE_ALIASES = {"semantic": "dense", "keyword": "bm25", "sparse": "bm25", "vector": "dense"}
MAX_QUESTION_CHARS = 4000
_CONTEXT_PREFIX_CHARS = 120
_EMBED_BATCH = 256
# A file modified this close to (or after) the scan that hashed it is hashed again next
# time: a later write within the file system's timestamp granularity could keep its stat.
_RACY_NS = 2_000_000_000

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class IndexSettings:
    """What an index is built with; a change of model or chunker forces a full rebuild."""

    model: str = "default"
    chunker: ChunkerSettings = field(default_factory=ChunkerSettings)
    sparse: SparseSettings = field(default_factory=SparseSettings)


@dataclass(frozen=True, slots=True)
class SearchSettings:
    """Query-time knobs: candidate depth and how dense and keyword rankings are fused.

    ``fusion`` is ``convex`` (cosine and top-scaled BM25, weighted; the default, tuned on
    SciFact train: bench/tune_fusion.py), ``rrf`` (reciprocal rank fusion with ``rrf_k``)
    or ``weighted`` (min-max scaled scores). The weights apply to whichever is chosen:
    set them equal for plain RRF.
    """

    candidates: int = 100
    fusion: str = "convex"
    rrf_k: float = 60.0
    dense_weight: float = 0.8
    sparse_weight: float = 0.2


@dataclass(frozen=True, slots=True)
class _FileStat:
    """What a corpus file's directory entry said when it was hashed."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    sha256: str

    @classmethod
    def of(cls, info: os.stat_result, sha256: str) -> _FileStat:
        return cls(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, sha256)

    def matches(self, info: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode) == (
            info.st_size,
            info.st_mtime_ns,
            info.st_ctime_ns,
            info.st_ino,
        )


@dataclass(slots=True)
class _StoredDocument:
    document: Document
    first_row: int
    chunks: int
    indexed_at: str
    aliases: list[str] = field(default_factory=list)


def _displayable(source: str) -> str:
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


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _embedding_text(title: str, section: str | None, text: str) -> str:
    """The text a chunk is embedded and keyword-indexed as: a short context header + body."""
    header = title if not section else f"{title} — {section}"
    return f"{header[:_CONTEXT_PREFIX_CHARS]}\n{text}"


def normalise_mode(mode: str) -> str:
    """Canonical retrieval mode (hybrid, dense or bm25); raises QueryError otherwise."""
    canonical = _MODE_ALIASES.get(mode.strip().lower(), mode.strip().lower())
    if canonical not in MODES:
        raise QueryError(f"unknown mode {mode!r}: use hybrid, dense or bm25")
    return canonical


class Index:
    """An in-memory searchable index over a corpus, loadable from and savable to disk."""

    def __init__(
        self,
        *,
        settings: IndexSettings,
        embedder: Embedder | None = None,
        search_settings: SearchSettings | None = None,
        embedder_factory: Callable[[str], Embedder] = make_embedder,
    ) -> None:
        self.settings = settings
        self._embedder_factory = embedder_factory
        self.search_settings = search_settings or SearchSettings()
        self._embedder = embedder
        self._docs: list[_StoredDocument] = []
        self._chunks: list[Chunk] = []
        self._row_doc = np.zeros(0, dtype=np.int64)
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._dense: DenseIndex | None = None
        self._sparse: SparseIndex | None = None
        self._dimension: int | None = embedder.dimension if embedder else None
        self._query_cache: dict[str, np.ndarray] = {}
        self._span_rows: dict[tuple[str, int, int], int] | None = None
        self._chunker_record: dict[str, Any] = settings.chunker.to_dict()
        self._sparse_record: dict[str, Any] = settings.sparse.to_dict()
        self._file_stats: dict[str, _FileStat] = {}

    # ------------------------------------------------------------------ properties

    @property
    def model_name(self) -> str:
        return self._embedder.name if self._embedder else canonical_model_name(self.settings.model)

    @property
    def embedder(self) -> Embedder:
        """The embedder, created on first use (keyword-only searches never load a model)."""
        if self._embedder is None:
            self._embedder = self._embedder_factory(self.settings.model)
            if self._dimension is not None and self._embedder.dimension != self._dimension:
                raise IndexMismatchError(
                    f"model {self._embedder.name} has dimension {self._embedder.dimension}, "
                    f"the index has {self._dimension}: run `tpd-qa index --full`"
                )
        return self._embedder

    @property
    def chunk_count(self) -> int:
        return len(self._chunks)

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything ``save`` would write differently: documents, names and file stats.

        Equal before and after an ``update`` means saving again would change nothing.
        """
        docs = tuple((d.document.source, d.document.sha256, tuple(d.aliases)) for d in self._docs)
        return docs, tuple(sorted(self._file_stats.items()))

    def documents(self) -> list[DocumentInfo]:
        """The indexed documents, in source order."""
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
            for d in self._docs
        ]

    def document(self, source: str) -> Document:
        """The indexed document with this source path (or duplicate path)."""
        for stored in self._docs:
            if stored.document.source == source or source in stored.aliases:
                return stored.document
        raise QueryError(f"no indexed document {source!r}")

    def chunks(self) -> list[Chunk]:
        """All chunks, in row order."""
        return list(self._chunks)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        corpus: Path,
        *,
        settings: IndexSettings | None = None,
        embedder: Embedder | None = None,
        embedder_factory: Callable[[str], Embedder] = make_embedder,
        exclude: Sequence[Path] = (),
        progress: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> tuple[Index, BuildReport]:
        """Index every supported file under ``corpus`` from scratch."""
        index = cls(
            settings=settings or IndexSettings(),
            embedder=embedder,
            embedder_factory=embedder_factory,
        )
        report = index.update(
            corpus, exclude=exclude, full=True, progress=progress, on_progress=on_progress
        )
        return index, report

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Document],
        *,
        settings: IndexSettings | None = None,
        embedder: Embedder | None = None,
        search_settings: SearchSettings | None = None,
        embedder_factory: Callable[[str], Embedder] = make_embedder,
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
        chunker = index._chunker()
        pending: list[tuple[_StoredDocument, list[Chunk]]] = []
        seen: set[str] = set()
        for document in documents:
            for key in (f"source:{document.source}", f"sha256:{document.sha256}"):
                if key in seen:
                    raise ValueError(f"duplicate document {key}")
                seen.add(key)
            chunks = chunker.chunk(document)
            if chunks:
                pending.append((_StoredDocument(document, 0, len(chunks), _now()), chunks))
        vectors, _ = index._embed_pending(pending, progress, on_progress)
        index._assemble([], pending, vectors)
        return index

    def compatibility(self, settings: IndexSettings) -> str:
        """Why this index cannot be updated incrementally under ``settings`` ('' if it can)."""
        if canonical_model_name(settings.model) != self.model_name:
            return f"model changed ({self.model_name} → {canonical_model_name(settings.model)})"
        if settings.chunker.to_dict() != self._chunker_record:
            return "chunker settings changed"
        if settings.sparse.to_dict() != self._sparse_record:
            return "keyword index settings changed"
        return ""

    def update(
        self,
        corpus: Path,
        *,
        exclude: Sequence[Path] = (),
        full: bool = False,
        progress: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> BuildReport:
        """Bring the index up to date with ``corpus``: embed only new and changed documents.

        Unchanged documents (same content hash) keep their chunks and vectors, also when
        the file was renamed; identical copies are indexed once and reported as duplicates.
        A file whose size, times and inode are as when it was last hashed is not read
        again (``full`` re-reads everything); chunks of a changed document whose text is
        unchanged keep their vectors.
        """
        started = time.perf_counter()
        corpus = Path(corpus)
        if not corpus.is_dir():
            raise IngestError(f"corpus folder {corpus} does not exist")
        report = BuildReport(full=full or not self._docs)
        if full and self._docs:
            report.full_reason = "--full requested"
        previous = {} if full else {d.document.sha256: d for d in self._docs}
        previous_sources = {d.document.source: d for d in self._docs}

        groups, order, stats = self._scan(corpus, exclude, report, on_progress, full=full)
        kept: list[_StoredDocument] = []
        pending: list[tuple[_StoredDocument, list[Chunk]]] = []
        chunker: Chunker | None = None
        moved: set[str] = set()  # old names of renamed documents: not "removed"
        for sha in order:
            paths = groups[sha]
            old = previous.get(sha)
            primary = self._primary(paths, old)
            for _, source in paths:
                if source != primary[1]:
                    report.outcomes.append(
                        FileOutcome(source, "duplicate", f"same content as {primary[1]}")
                    )
            path, source = primary
            if old is not None:
                status = "unchanged" if source == old.document.source else "renamed"
                reason = "" if status == "unchanged" else f"was {old.document.source}"
                if status == "renamed":
                    moved.add(old.document.source)
                document = replace(old.document, source=source)
                stored = _StoredDocument(document, 0, old.chunks, old.indexed_at)
                stored.aliases = [s for _, s in paths if s != source]
                kept.append(stored)
                report.outcomes.append(FileOutcome(source, status, reason, old.chunks))
                continue
            try:
                document = parse(read_file(path), source)
            except IngestError as exc:
                report.outcomes.append(FileOutcome(source, "skipped", exc.reason))
                continue
            chunker = chunker or self._chunker()
            chunks = chunker.chunk(document)
            if not chunks:
                report.outcomes.append(FileOutcome(source, "skipped", "no text to index"))
                continue
            stored = _StoredDocument(document, 0, len(chunks), _now())
            stored.aliases = [s for _, s in paths if s != source]
            status = "changed" if source in previous_sources else "added"
            report.outcomes.append(FileOutcome(source, status, "", len(chunks)))
            pending.append((stored, chunks))

        present = {d.document.source for d in kept} | {s.document.source for s, _ in pending}
        present |= {o.source for o in report.outcomes} | moved
        for source in sorted(previous_sources):
            if source not in present:
                report.outcomes.append(FileOutcome(source, "removed"))

        new_vectors, embedded = self._embed_pending(pending, progress, on_progress, reuse=not full)
        self._assemble(kept, pending, new_vectors)
        self._file_stats = stats
        report.documents = len(self._docs)
        report.chunks = len(self._chunks)
        report.embedded_chunks = embedded
        report.outcomes.sort(key=lambda o: (o.source, o.status))
        report.seconds = time.perf_counter() - started
        return report

    def _chunker(self) -> Chunker:
        settings = self.settings.chunker
        limit = self.embedder.max_tokens - 32
        if settings.max_tokens > limit:
            settings = replace(
                settings, max_tokens=limit, target_tokens=min(settings.target_tokens, limit)
            )
        return Chunker(settings, self.embedder.count_tokens)

    def _scan(
        self,
        corpus: Path,
        exclude: Sequence[Path],
        report: BuildReport,
        on_progress: ProgressCallback | None,
        *,
        full: bool = False,
    ) -> tuple[dict[str, list[tuple[Path, str]]], list[str], dict[str, _FileStat]]:
        """Hash every candidate file; group paths by content hash (first-seen order).

        A file whose directory entry is as it was when last hashed keeps that hash
        without being read. Returns the groups, their order and the new stat records.
        """
        groups: dict[str, list[tuple[Path, str]]] = {}
        order: list[str] = []
        stats: dict[str, _FileStat] = {}
        known = {} if full else self._file_stats
        settled = time.time_ns() - _RACY_NS
        candidates = discover(corpus, exclude=exclude)
        for done, candidate in enumerate(candidates, start=1):
            if on_progress:
                on_progress("scanning", done, len(candidates))
            source = _displayable(candidate.source)
            if candidate.skip_reason:
                report.outcomes.append(FileOutcome(source, "skipped", candidate.skip_reason))
                continue
            try:
                before = os.stat(candidate.path)
            except OSError:
                before = None
            cached = known.get(source)
            if before is not None and cached is not None and cached.matches(before):
                sha = cached.sha256
            else:
                try:
                    sha = content_hash(read_file(candidate.path))
                except IngestError as exc:
                    report.outcomes.append(FileOutcome(source, "skipped", exc.reason))
                    continue
            if before is not None and max(before.st_mtime_ns, before.st_ctime_ns) < settled:
                stats[source] = _FileStat.of(before, sha)
            if sha not in groups:
                groups[sha] = []
                order.append(sha)
            groups[sha].append((candidate.path, source))
        return groups, order, stats

    @staticmethod
    def _primary(paths: list[tuple[Path, str]], old: _StoredDocument | None) -> tuple[Path, str]:
        """The path a group of identical files is indexed under: keep the previous one."""
        if old is not None:
            for path, source in paths:
                if source == old.document.source:
                    return path, source
        return paths[0]

    def _embed_pending(
        self,
        pending: list[tuple[_StoredDocument, list[Chunk]]],
        progress: bool,
        on_progress: ProgressCallback | None,
        *,
        reuse: bool = False,
    ) -> tuple[np.ndarray, int]:
        """Vectors for every pending chunk, and how many of them had to be embedded.

        A chunk whose embedding text is already in the index (an unchanged paragraph of
        an edited document) takes the stored vector instead of being embedded again.
        """
        texts = [
            _embedding_text(stored.document.title, chunk.section, chunk.text)
            for stored, chunks in pending
            for chunk in chunks
        ]
        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32), 0
        embedder = self.embedder
        out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
        edited = {stored.document.source for stored, _ in pending}
        stored_rows = self._rows_by_text(edited) if reuse and len(self._vectors) else {}
        todo: list[int] = []
        for number, text in enumerate(texts):
            row = stored_rows.get(_text_key(text))
            if row is None:
                todo.append(number)
            else:
                out[number] = self._vectors[row]
        bar = _progress_bar(len(todo), progress)
        # Longest first across the whole call, not per batch: batches of like lengths
        # waste little compute on padding.
        order = sorted(todo, key=lambda number: -len(texts[number]))
        for start in range(0, len(order), _EMBED_BATCH):
            rows = order[start : start + _EMBED_BATCH]
            out[rows] = embedder.embed_batch([texts[row] for row in rows])
            bar.update(len(rows))
            if on_progress:
                on_progress("embedding", start + len(rows), len(order))
        bar.close()
        self._dimension = embedder.dimension
        return out, len(todo)

    def _rows_by_text(self, sources: set[str]) -> dict[bytes, int]:
        """Rows of the stored chunks of ``sources``, keyed by a digest of their embedding text."""
        return {
            _text_key(self._keyword_text(row)): row
            for stored in self._docs
            if stored.document.source in sources
            for row in range(stored.first_row, stored.first_row + stored.chunks)
        }

    def _assemble(
        self,
        kept: list[_StoredDocument],
        pending: list[tuple[_StoredDocument, list[Chunk]]],
        new_vectors: np.ndarray,
    ) -> None:
        """Lay out documents in source order with contiguous chunk rows; rebuild search."""
        old_chunks, old_vectors = self._chunks, self._vectors
        old_rows = {d.document.sha256: d.first_row for d in self._docs}
        fresh: dict[str, tuple[list[Chunk], np.ndarray]] = {}
        offset = 0
        for stored, chunks in pending:
            fresh[stored.document.sha256] = (chunks, new_vectors[offset : offset + len(chunks)])
            offset += len(chunks)
        docs = sorted(kept + [s for s, _ in pending], key=lambda d: d.document.source)
        built = self._dense is not None and self._sparse is not None
        if (
            built
            and not pending
            and [d.document.sha256 for d in docs] == [d.document.sha256 for d in self._docs]
        ):
            # The same documents in the same rows (at most renamed): the search
            # structures stay valid, so keep them instead of rebuilding BM25 and FAISS.
            for stored, old in zip(docs, self._docs, strict=True):
                stored.first_row = old.first_row
            self._docs = docs
            self._span_rows = None
            return
        chunks_out: list[Chunk] = []
        vector_parts: list[np.ndarray] = []
        for stored in docs:
            sha = stored.document.sha256
            if sha in fresh:
                chunks, vectors = fresh[sha]
            else:
                first = old_rows[sha]
                chunks = old_chunks[first : first + stored.chunks]
                vectors = old_vectors[first : first + stored.chunks]
            stored.first_row = len(chunks_out)
            chunks_out.extend(chunks)
            vector_parts.append(np.asarray(vectors, dtype=np.float32))
        dimension = self._dimension or (self._embedder.dimension if self._embedder else 0)
        self._docs = docs
        self._chunks = chunks_out
        self._vectors = (
            np.ascontiguousarray(np.concatenate(vector_parts), dtype=np.float32)
            if vector_parts
            else np.zeros((0, dimension), dtype=np.float32)
        )
        self._rebuild_search()

    def _rebuild_search(self, dense: DenseIndex | None = None) -> None:
        self._row_doc = np.zeros(len(self._chunks), dtype=np.int64)
        for number, stored in enumerate(self._docs):
            self._row_doc[stored.first_row : stored.first_row + stored.chunks] = number
        self._dense = dense or DenseIndex.build(self._vectors)
        self._sparse = SparseIndex.build(
            [self._keyword_text(row) for row in range(len(self._chunks))], self.settings.sparse
        )
        self._query_cache.clear()
        self._span_rows = None

    def _keyword_text(self, row: int) -> str:
        chunk = self._chunks[row]
        title = self._docs[int(self._row_doc[row])].document.title
        return _embedding_text(title, chunk.section, chunk.text)

    # ------------------------------------------------------------------ searching

    def search(
        self,
        question: str,
        k: int = 5,
        *,
        mode: str = "hybrid",
        sources: Iterable[str] | None = None,
    ) -> list[Passage]:
        """The ``k`` best passages for ``question``, best first, without repeated text."""
        question = _check_question(question)
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise QueryError(f"k must be a positive whole number, got {k!r}")
        mode = normalise_mode(mode)
        if not self._chunks:
            return []
        allowed = self._allowed_rows(sources)
        if allowed is not None and len(allowed) == 0:
            return []
        depth = max(self.search_settings.candidates, 4 * k)
        ranked = self._rank(question, mode, depth, allowed)
        return self._passages(ranked, k)

    def _rank(
        self, question: str, mode: str, depth: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        assert self._dense is not None and self._sparse is not None
        scored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if mode in ("dense", "hybrid"):
            scored["dense"] = self._dense.search(self._query_vector(question), depth, allowed)
        if mode in ("bm25", "hybrid"):
            scored["bm25"] = self._sparse.search(question, depth, allowed)
        if mode != "hybrid":
            scores, ids = scored[mode]
            return list(zip(ids.tolist(), scores.tolist(), strict=True))
        settings = self.search_settings
        weights = {"dense": settings.dense_weight, "bm25": settings.sparse_weight}
        if settings.fusion == "convex":
            fused = convex_fusion(scored, weights)
        elif settings.fusion == "weighted":
            fused = weighted_fusion(scored, weights)
        else:
            fused = reciprocal_rank_fusion(
                [scored["dense"][1].tolist(), scored["bm25"][1].tolist()],
                k=settings.rrf_k,
                weights=[weights["dense"], weights["bm25"]],
            )
        return sorted(fused.items(), key=lambda item: (-item[1], item[0]))

    def _query_vector(self, question: str) -> np.ndarray:
        vector = self._query_cache.get(question)
        if vector is None:
            vector = self.embedder.embed_batch([question])[0]
            if len(self._query_cache) >= 512:
                self._query_cache.pop(next(iter(self._query_cache)))
            self._query_cache[question] = vector
        return vector

    def similarity(self, question: str, passages: Sequence[Passage]) -> list[float]:
        """Cosine similarity between the question and each passage's chunk (-1..1).

        Fusion scores only order results; this absolute figure lets a caller say when
        even the best passage is a weak match.
        """
        if not passages:
            return []
        vector = self._query_vector(_check_question(question))
        if self._span_rows is None:
            self._span_rows = {
                (self._docs[int(self._row_doc[row])].document.source, chunk.start, chunk.end): row
                for row, chunk in enumerate(self._chunks)
            }
        spans = self._span_rows
        out = []
        for passage in passages:
            row = spans.get((passage.source, passage.start, passage.end))
            out.append(float(self._vectors[row] @ vector) if row is not None else 0.0)
        return out

    def _allowed_rows(self, sources: Iterable[str] | None) -> np.ndarray | None:
        if sources is None:
            return None
        wanted = set(sources)
        rows = [
            np.arange(d.first_row, d.first_row + d.chunks)
            for d in self._docs
            if d.document.source in wanted or wanted.intersection(d.aliases)
        ]
        return np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)

    def _passages(self, ranked: list[tuple[int, float]], k: int) -> list[Passage]:
        """Turn ranked rows into passages, skipping any that overlap a better one."""
        taken: dict[int, list[tuple[int, int]]] = {}
        passages: list[Passage] = []
        for row, score in ranked:
            chunk = self._chunks[row]
            doc_number = int(self._row_doc[row])
            spans = taken.setdefault(doc_number, [])
            if any(chunk.start < end and start < chunk.end for start, end in spans):
                continue
            spans.append((chunk.start, chunk.end))
            document = self._docs[doc_number].document
            passages.append(
                Passage(
                    text=chunk.text,
                    score=round(float(score), 6),
                    source=document.source,
                    title=document.title,
                    page=chunk.page,
                    section=chunk.section,
                    start=chunk.start,
                    end=chunk.end,
                )
            )
            if len(passages) == k:
                break
        return passages

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path) -> Path:
        """Write the index under ``directory`` atomically; returns the manifest path."""
        directory = Path(directory)
        claim_index_dir(directory)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        generation = f"gen-{stamp}-{os.getpid()}-{time.perf_counter_ns() % 10**6:06d}"
        staging = directory / f".{generation}.partial"
        staging.mkdir()
        try:
            self._write_generation(staging)
            files = _checksums(staging)
            _fsync_tree(staging)
            os.replace(staging, directory / generation)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a failed save leaves nothing behind
            raise
        _fsync_dir(directory)
        manifest = self._manifest(generation, files)
        try:
            _atomic_write_text(directory / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        except BaseException:
            shutil.rmtree(directory / generation, ignore_errors=True)
            raise
        _remove_stale(directory, keep=generation)
        log.info("saved index %s (%d chunks)", generation, len(self._chunks))
        return directory / "manifest.json"

    def _write_generation(self, staging: Path) -> None:
        assert self._dense is not None and self._sparse is not None
        _write_jsonl(staging / "documents.jsonl", (_document_record(d) for d in self._docs))
        _write_jsonl(
            staging / "chunks.jsonl",
            (_chunk_record(c, int(self._row_doc[i])) for i, c in enumerate(self._chunks)),
        )
        with open(staging / "vectors.npy", "wb") as handle:
            np.save(handle, self._vectors, allow_pickle=False)
        _write_jsonl(
            staging / "files.jsonl",
            ({"source": source, **asdict(stat)} for source, stat in self._file_stats.items()),
        )
        if self._dense.kind != "flat":
            self._dense.save(staging / "dense.faiss")
        (staging / "sparse").mkdir()
        self._sparse.save(staging / "sparse")

    def _manifest(self, generation: str, files: dict[str, Any]) -> dict[str, Any]:
        assert self._dense is not None
        return {
            "format_version": FORMAT_VERSION,
            "tpd_qa_version": __version__,
            "generation": generation,
            "saved_at": _now(),
            "model": {"name": self.model_name, "dimension": int(self._vectors.shape[1])},
            "chunker": self.settings.chunker.to_dict(),
            "sparse": self.settings.sparse.to_dict(),
            "dense": {"kind": self._dense.kind},
            "counts": {"documents": len(self._docs), "chunks": len(self._chunks)},
            "documents": [
                {
                    "source": d.document.source,
                    "sha256": d.document.sha256,
                    "title": d.document.title,
                    "kind": d.document.kind,
                    "pages": d.document.pages,
                    "chunks": d.chunks,
                    "duplicates": d.aliases,
                    "indexed_at": d.indexed_at,
                }
                for d in self._docs
            ],
            "files": files,
        }

    @classmethod
    def load(
        cls,
        directory: Path,
        *,
        embedder: Embedder | None = None,
        model: str | None = None,
        search_settings: SearchSettings | None = None,
        embedder_factory: Callable[[str], Embedder] = make_embedder,
        verify: bool = True,
    ) -> Index:
        """Load an index saved by ``save``; checks it is complete and fits the model.

        ``model`` (a configured model name) or ``embedder`` must match the model the index
        was built with; with neither, the index's own model is used (loaded lazily).
        """
        directory = Path(directory)
        manifest = read_manifest(directory)
        built_with = manifest["model"]["name"]
        dimension = int(manifest["model"]["dimension"])
        configured = embedder.name if embedder else canonical_model_name(model) if model else None
        if configured is not None and configured != built_with:
            raise IndexMismatchError(
                f"index was built with model {built_with}, but {configured} is configured: "
                "run `tpd-qa index` to rebuild it for this model"
            )
        if embedder is not None and embedder.dimension != dimension:
            raise IndexMismatchError(
                f"index vectors have dimension {dimension}, model {embedder.name} gives "
                f"{embedder.dimension}: run `tpd-qa index --full`"
            )
        generation = directory / manifest["generation"]
        if verify:
            _verify_files(generation, manifest["files"])
        try:
            settings = IndexSettings(
                model=built_with,
                chunker=ChunkerSettings(**manifest["chunker"]),
                sparse=SparseSettings(**manifest["sparse"]),
            )
        except (TypeError, ValueError) as exc:
            raise IndexMismatchError(
                f"index settings not understood ({exc}): run `tpd-qa index --full`"
            ) from exc
        index = cls(
            settings=settings,
            embedder=embedder,
            search_settings=search_settings,
            embedder_factory=embedder_factory,
        )
        index._dimension = dimension
        index._chunker_record = dict(manifest["chunker"])
        index._sparse_record = dict(manifest["sparse"])
        try:
            index._read(generation, manifest)
        except (KeyError, TypeError, ValueError, EOFError, OSError) as exc:
            raise IndexCorruptError(
                f"index at {directory} is damaged ({type(exc).__name__}: {exc}): "
                "run `tpd-qa index --full`"
            ) from exc
        except IndexCorruptError as exc:  # from the dense or keyword index: say what to run
            if "tpd-qa index" in str(exc):
                raise
            raise IndexCorruptError(
                f"index at {directory} is damaged ({exc}): run `tpd-qa index --full`"
            ) from exc
        return index

    def _read(self, generation: Path, manifest: dict[str, Any]) -> None:
        docs: list[_StoredDocument] = []
        for record in _read_jsonl(generation / "documents.jsonl"):
            docs.append(_document_from_record(record))
        chunks: list[Chunk] = []
        row_doc: list[int] = []
        for record in _read_jsonl(generation / "chunks.jsonl"):
            doc_number = int(record["doc"])
            if not 0 <= doc_number < len(docs):  # a negative row would pick a wrong document
                raise ValueError(f"chunk refers to document row {doc_number} of {len(docs)}")
            document = docs[doc_number].document
            start, end = int(record["start"]), int(record["end"])
            if not 0 <= start < end <= len(document.text):
                raise ValueError(f"chunk span {start}-{end} outside its document")
            chunks.append(
                Chunk(
                    document.sha256,
                    start,
                    end,
                    document.text[start:end],
                    record["page"],
                    record["section"],
                )
            )
            row_doc.append(doc_number)
        vectors = np.load(generation / "vectors.npy", allow_pickle=False)
        dimension = int(manifest["model"]["dimension"])
        if vectors.ndim != 2 or vectors.shape != (len(chunks), dimension):
            raise IndexCorruptError(
                f"vector file holds {vectors.shape}, expected ({len(chunks)}, {dimension}): "
                "run `tpd-qa index --full`"
            )
        expected = manifest["counts"]
        if expected["chunks"] != len(chunks) or expected["documents"] != len(docs):
            raise IndexCorruptError(
                "manifest counts do not match the stored chunks: run `tpd-qa index --full`"
            )
        self._docs, self._chunks = docs, chunks
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._row_doc = np.asarray(row_doc, dtype=np.int64)
        dense = None
        if manifest["dense"]["kind"] != "flat":
            dense = DenseIndex.load(generation / "dense.faiss", self._vectors)
        else:
            dense = DenseIndex.build(self._vectors, kind="flat")
        if dense.size != len(chunks):
            raise IndexCorruptError(
                "vector index size differs from chunk count: run `tpd-qa index --full`"
            )
        self._dense = dense
        self._span_rows = None
        self._sparse = SparseIndex.load(generation / "sparse", self.settings.sparse, len(chunks))
        stats_file = generation / "files.jsonl"  # absent in indexes saved before it existed
        if stats_file.is_file():
            self._file_stats = {
                str(record.pop("source")): _FileStat(**record) for record in _read_jsonl(stats_file)
            }


# ---------------------------------------------------------------------- files


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of the index in ``directory``; typed errors when absent or unusable."""
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise IndexNotFoundError(f"no index in {directory}: run `tpd-qa index` first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"{path} is unreadable ({exc}): run `tpd-qa index --full`") from exc
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{path} is not an index manifest: run `tpd-qa index --full`")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format {version} is not the format {FORMAT_VERSION} this tpd_qa reads: "
            "run `tpd-qa index --full`"
        )
    required = ("generation", "model", "chunker", "sparse", "dense", "counts", "files", "documents")
    missing = [key for key in required if key not in manifest]
    if missing or not str(manifest.get("generation", "")).startswith("gen-"):
        raise IndexCorruptError(
            f"{path} lacks {', '.join(missing) or 'generation'}: run `tpd-qa index --full`"
        )
    sections = ("model", "chunker", "sparse", "dense", "counts", "files")
    model = manifest["model"]
    if (
        not all(isinstance(manifest[key], dict) for key in sections)
        or not isinstance(model.get("name"), str)
        or type(model.get("dimension")) is not int
        or not isinstance(manifest["generation"], str)
        or Path(manifest["generation"]).name != manifest["generation"]
    ):
        raise IndexCorruptError(f"{path} is malformed: run `tpd-qa index --full`")
    return manifest


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
            f"another `tpd-qa index` is rebuilding {directory}; try again when it finishes"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="Embedding", unit="chunk", disable=not enabled, leave=False)


def _document_record(stored: _StoredDocument) -> dict[str, Any]:
    doc = stored.document
    return {
        "source": doc.source,
        "title": doc.title,
        "kind": doc.kind,
        "sha256": doc.sha256,
        "text": doc.text,
        "page_starts": list(doc.page_starts),
        "headings": [[h.start, h.end, h.level, h.title] for h in doc.headings],
        "first_row": stored.first_row,
        "chunks": stored.chunks,
        "indexed_at": stored.indexed_at,
        "duplicates": stored.aliases,
    }


def _document_from_record(record: dict[str, Any]) -> _StoredDocument:
    document = Document(
        source=record["source"],
        title=record["title"],
        text=record["text"],
        kind=record["kind"],
        sha256=record["sha256"],
        page_starts=tuple(record["page_starts"]),
        headings=tuple(Heading(*h) for h in record["headings"]),
    )
    return _StoredDocument(
        document,
        int(record["first_row"]),
        int(record["chunks"]),
        record["indexed_at"],
        list(record["duplicates"]),
    )


def _chunk_record(chunk: Chunk, doc_number: int) -> dict[str, Any]:
    return {
        "doc": doc_number,
        "start": chunk.start,
        "end": chunk.end,
        "page": chunk.page,
        "section": chunk.section,
    }


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksums(root: Path) -> dict[str, Any]:
    return {
        path.relative_to(root).as_posix(): {
            "bytes": path.stat().st_size,
            "sha256": _file_digest(path),
        }
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _verify_files(generation: Path, files: dict[str, Any]) -> None:
    if not generation.is_dir():
        raise IndexCorruptError(
            f"index data folder {generation.name} is missing: run `tpd-qa index --full`"
        )
    for name, expected in files.items():
        path = generation / name
        if not path.is_file():
            raise IndexCorruptError(f"index file {name} is missing: run `tpd-qa index --full`")
        if path.stat().st_size != expected["bytes"] or _file_digest(path) != expected["sha256"]:
            raise IndexCorruptError(
                f"index file {name} is damaged (checksum mismatch): run `tpd-qa index --full`"
            )


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


def remove_debris(directory: Path) -> None:
    """Delete what an interrupted save left behind (call it holding the rebuild lock).

    ``save`` cleans up after itself, but a rebuild killed between replacing the manifest
    and deleting the old generation (or killed while staging) leaves folders that the
    next rebuild would keep forever when it finds nothing to save.
    """
    try:
        keep = str(read_manifest(directory)["generation"])
    except (IndexNotFoundError, IndexCorruptError, IndexMismatchError):
        return
    _remove_stale(Path(directory), keep=keep)


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
        raise ConfigError(f"{directory} is a file, not a folder; choose another --index")
    if (directory / MARKER).is_file():
        return
    if directory.is_dir():
        entries = {entry.name for entry in directory.iterdir()} - _HARMLESS
        ours = "manifest.json" in entries and _is_our_manifest(directory / "manifest.json")
        if entries and not ours:
            raise ConfigError(
                f"{directory} is not a tpd-qa index folder and is not empty; choose another --index"
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
        raise ConfigError(f"corpus {corpus} is a file, not a folder; choose a folder with --corpus")
    if not corpus.exists():
        raise ConfigError(
            f"corpus folder {corpus} does not exist; create it or choose another --corpus"
        )
    if index_dir.exists() and not index_dir.is_dir():
        raise ConfigError(f"{index_dir} is a file, not a folder; choose another --index")
    real_corpus, real_index = corpus.resolve(), index_dir.resolve()
    if real_corpus == real_index:
        raise ConfigError(
            f"the corpus and the index are the same folder ({corpus}); choose a separate --index"
        )
    if real_index in real_corpus.parents:
        raise ConfigError(
            f"the corpus {corpus} is inside the index folder {index_dir}; "
            "choose an --index outside the corpus"
        )


def _check_question(question: str) -> str:
    if not isinstance(question, str):
        raise QueryError("the question must be text")
    cleaned = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in question).strip()
    if not cleaned:
        raise QueryError("the question is empty: type a question")
    return cleaned[:MAX_QUESTION_CHARS]
