"""Bringing an index up to date: state + corpus -> next state + BuildReport.

Scans the corpus (skipping files whose directory entry is as it was when last hashed),
works out the change set by content hash (unchanged, renamed, changed, added, removed,
duplicate), embeds only new text (a chunk whose embedding text is already stored keeps
its vector) and lays out the next state's rows.

The embedder and chunker are handed in as zero-argument functions, called only when
there is something to chunk or embed: an update that changes nothing loads no model.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tpd_qa.chunking import Chunker, ChunkerSettings
from tpd_qa.embedding import Embedder
from tpd_qa.errors import IngestError
from tpd_qa.index.state import (
    FileStat,
    IndexState,
    StoredDocument,
    displayable,
    embedding_text,
    now,
)
from tpd_qa.ingest import OcrOptions, content_hash, discover, parse, read_file
from tpd_qa.records import BuildReport, Chunk, Document, FileOutcome
from tpd_qa.sparse import SparseSettings

__all__ = ["ProgressCallback", "Syncer", "make_chunker"]

#: ``on_progress(stage, done, total)``; stage is "scanning", "ocr" (pages of one scanned
#: document) or "embedding".
ProgressCallback = Callable[[str, int, int], None]

_EMBED_BATCH = 256
# A file modified this close to (or after) the scan that hashed it is hashed again next
# time: a later write within the file system's timestamp granularity could keep its stat.
_RACY_NS = 2_000_000_000
# Chunks stay this many tokens under the model's window (room for special tokens).
_WINDOW_MARGIN = 32

_Pending = list[tuple[StoredDocument, list[Chunk]]]
_Groups = dict[str, list[tuple[Path, str]]]


def make_chunker(settings: ChunkerSettings, embedder: Embedder) -> Chunker:
    """A chunker whose chunks fit ``embedder``'s window, counting tokens its way."""
    limit = embedder.max_tokens - _WINDOW_MARGIN
    if settings.max_tokens > limit:
        settings = replace(
            settings, max_tokens=limit, target_tokens=min(settings.target_tokens, limit)
        )
    return Chunker(settings, embedder.count_tokens)


@dataclass(frozen=True, slots=True)
class Syncer:
    """Computes next states; ``embedder`` and ``chunker`` are created on first call."""

    sparse: SparseSettings
    embedder: Callable[[], Embedder]
    chunker: Callable[[], Chunker]
    progress: bool = False
    on_progress: ProgressCallback | None = None
    #: How scanned pages are read (None: with Tesseract, no cache).
    ocr: OcrOptions | None = None

    def _ocr_options(self) -> OcrOptions:
        options = self.ocr or OcrOptions()
        progress = self.on_progress
        if progress is None:
            return options
        return replace(options, on_page=lambda done, total: progress("ocr", done, total))

    def from_documents(self, documents: Iterable[Document]) -> IndexState:
        """A state of in-memory documents (sources and hashes unique; empty ones left out)."""
        chunker = self.chunker()
        pending: _Pending = []
        seen: set[str] = set()
        for document in documents:
            for key in (f"source:{document.source}", f"sha256:{document.sha256}"):
                if key in seen:
                    raise ValueError(f"duplicate document {key}")
                seen.add(key)
            chunks = chunker.chunk(document)
            if chunks:
                pending.append((StoredDocument(document, 0, len(chunks), now()), chunks))
        empty = IndexState(dimension=self.embedder().dimension)
        vectors, _ = self._embed(empty, pending)
        return self._assemble(empty, [], pending, vectors)

    def update(
        self,
        state: IndexState,
        corpus: Path,
        *,
        exclude: Sequence[Path] = (),
        full: bool = False,
    ) -> tuple[IndexState, BuildReport]:
        """The state after bringing ``state`` up to date with ``corpus``, and the report.

        ``state`` itself is left as it was.
        """
        started = time.perf_counter()
        corpus = Path(corpus)
        if not corpus.is_dir():
            raise IngestError(f"corpus folder {corpus} does not exist")
        report = BuildReport(full=full or not state.docs)
        if full and state.docs:
            report.full_reason = "--full requested"
        previous = {} if full else {d.document.sha256: d for d in state.docs}
        previous_sources = {d.document.source: d for d in state.docs}

        groups, order, stats = self._scan(state, corpus, exclude, report, full=full)
        kept: list[StoredDocument] = []
        pending: _Pending = []
        chunker: Chunker | None = None
        ocr_options = self._ocr_options()
        moved: set[str] = set()  # old names of renamed documents: not "removed"
        for sha in order:
            paths = groups[sha]
            old = previous.get(sha)
            primary = _primary(paths, old)
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
                stored = StoredDocument(document, 0, old.chunks, old.indexed_at)
                stored.aliases = [s for _, s in paths if s != source]
                kept.append(stored)
                report.outcomes.append(FileOutcome(source, status, reason, old.chunks))
                continue
            try:
                document = parse(read_file(path), source, ocr=ocr_options)
            except IngestError as exc:
                report.outcomes.append(FileOutcome(source, "skipped", exc.reason))
                continue
            chunker = chunker or self.chunker()
            chunks = chunker.chunk(document)
            if not chunks:
                report.outcomes.append(FileOutcome(source, "skipped", "no text to index"))
                continue
            stored = StoredDocument(document, 0, len(chunks), now())
            stored.aliases = [s for _, s in paths if s != source]
            status = "changed" if source in previous_sources else "added"
            reason = "; ".join(document.notes)  # e.g. scanned pages OCR could not read
            report.outcomes.append(FileOutcome(source, status, reason, len(chunks)))
            pending.append((stored, chunks))

        present = {d.document.source for d in kept} | {s.document.source for s, _ in pending}
        present |= {o.source for o in report.outcomes} | moved
        for source in sorted(previous_sources):
            if source not in present:
                report.outcomes.append(FileOutcome(source, "removed"))

        if chunker is not None and state.dimension is None:  # the model is loaded anyway
            state = replace(state, dimension=self.embedder().dimension)
        vectors, embedded = self._embed(state, pending, reuse=not full)
        following = self._assemble(state, kept, pending, vectors)
        following.file_stats = stats
        report.documents = len(following.docs)
        report.chunks = len(following.chunks)
        report.embedded_chunks = embedded
        report.outcomes.sort(key=lambda o: (o.source, o.status))
        report.seconds = time.perf_counter() - started
        return following, report

    def _scan(
        self,
        state: IndexState,
        corpus: Path,
        exclude: Sequence[Path],
        report: BuildReport,
        *,
        full: bool = False,
    ) -> tuple[_Groups, list[str], dict[str, FileStat]]:
        """Hash every candidate file; group paths by content hash (first-seen order).

        A file whose directory entry is as it was when last hashed keeps that hash
        without being read. Returns the groups, their order and the new stat records.
        """
        groups: _Groups = {}
        order: list[str] = []
        stats: dict[str, FileStat] = {}
        known = {} if full else state.file_stats
        settled = time.time_ns() - _RACY_NS
        candidates = discover(corpus, exclude=exclude)
        for done, candidate in enumerate(candidates, start=1):
            if self.on_progress:
                self.on_progress("scanning", done, len(candidates))
            source = displayable(candidate.source)
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
                stats[source] = FileStat.of(before, sha)
            if sha not in groups:
                groups[sha] = []
                order.append(sha)
            groups[sha].append((candidate.path, source))
        return groups, order, stats

    def _embed(
        self, state: IndexState, pending: _Pending, *, reuse: bool = False
    ) -> tuple[np.ndarray, int]:
        """Vectors for every pending chunk, and how many of them had to be embedded.

        A chunk whose embedding text is already in ``state`` (an unchanged paragraph of
        an edited document) takes the stored vector instead of being embedded again.
        """
        texts = [
            embedding_text(stored.document.title, chunk.section, chunk.text)
            for stored, chunks in pending
            for chunk in chunks
        ]
        if not texts:
            return np.zeros((0, state.dimension or 0), dtype=np.float32), 0
        embedder = self.embedder()
        out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
        edited = {stored.document.source for stored, _ in pending}
        stored_rows = _rows_by_text(state, edited) if reuse and len(state.vectors) else {}
        todo: list[int] = []
        for number, text in enumerate(texts):
            row = stored_rows.get(_text_key(text))
            if row is None:
                todo.append(number)
            else:
                out[number] = state.vectors[row]
        bar = _progress_bar(len(todo), self.progress)
        # Longest first across the whole call, not per batch: batches of like lengths
        # waste little compute on padding.
        order = sorted(todo, key=lambda number: -len(texts[number]))
        for start in range(0, len(order), _EMBED_BATCH):
            rows = order[start : start + _EMBED_BATCH]
            out[rows] = embedder.embed_batch([texts[row] for row in rows])
            bar.update(len(rows))
            if self.on_progress:
                self.on_progress("embedding", start + len(rows), len(order))
        bar.close()
        return out, len(todo)

    def _assemble(
        self,
        state: IndexState,
        kept: list[StoredDocument],
        pending: _Pending,
        new_vectors: np.ndarray,
    ) -> IndexState:
        """Documents in source order with contiguous chunk rows, searchable."""
        old_rows = {d.document.sha256: d.first_row for d in state.docs}
        fresh: dict[str, tuple[list[Chunk], np.ndarray]] = {}
        offset = 0
        for stored, chunks in pending:
            fresh[stored.document.sha256] = (chunks, new_vectors[offset : offset + len(chunks)])
            offset += len(chunks)
        docs = sorted(kept + [s for s, _ in pending], key=lambda d: d.document.source)
        dimension = new_vectors.shape[1] if len(new_vectors) else state.dimension
        if (
            state.searchable
            and not pending
            and [d.document.sha256 for d in docs] == [d.document.sha256 for d in state.docs]
        ):
            # The same documents in the same rows (at most renamed): the search
            # structures stay valid, so keep them instead of rebuilding BM25 and FAISS.
            for stored, old in zip(docs, state.docs, strict=True):
                stored.first_row = old.first_row
            return replace(state, docs=docs, dimension=dimension)
        chunks_out: list[Chunk] = []
        vector_parts: list[np.ndarray] = []
        for stored in docs:
            sha = stored.document.sha256
            if sha in fresh:
                chunks, vectors = fresh[sha]
            else:
                first = old_rows[sha]
                chunks = state.chunks[first : first + stored.chunks]
                vectors = state.vectors[first : first + stored.chunks]
            stored.first_row = len(chunks_out)
            chunks_out.extend(chunks)
            vector_parts.append(np.asarray(vectors, dtype=np.float32))
        following = IndexState(
            docs=docs,
            chunks=chunks_out,
            vectors=(
                np.ascontiguousarray(np.concatenate(vector_parts), dtype=np.float32)
                if vector_parts
                else np.zeros((0, dimension or 0), dtype=np.float32)
            ),
            file_stats=state.file_stats,
            dimension=dimension,
        )
        following.rebuild_search(self.sparse)
        return following


def _primary(paths: list[tuple[Path, str]], old: StoredDocument | None) -> tuple[Path, str]:
    """The path a group of identical files is indexed under: keep the previous one."""
    if old is not None:
        for path, source in paths:
            if source == old.document.source:
                return path, source
    return paths[0]


def _rows_by_text(state: IndexState, sources: set[str]) -> dict[bytes, int]:
    """Rows of the stored chunks of ``sources``, keyed by a digest of their embedding text."""
    return {
        _text_key(state.keyword_text(row)): row
        for stored in state.docs
        if stored.document.source in sources
        for row in stored.rows
    }


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="Embedding", unit="chunk", disable=not enabled, leave=False)
