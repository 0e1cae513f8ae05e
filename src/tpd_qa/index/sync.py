"""Bringing an index up to date: state + corpus -> next state + BuildReport.

Scans the corpus (skipping files whose directory entry is as it was when last hashed),
works out the change set by content hash (unchanged, renamed, changed, added, removed,
duplicate), embeds only new text (a chunk whose embedding text is already stored keeps
its vector) and lays out the next state's rows.

The embedder and chunker are handed in as zero-argument functions, called only when
there is something to chunk or embed: an update that changes nothing loads no model.
Reading, parsing, chunking and embedding the new and changed files is the work of an
:class:`~tpd_qa.index.executor.Executor` (in this process by default, or on a Ray
cluster); the change set, the stat cache and the next state are decided here either way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tpd_qa.chunking import Chunker
from tpd_qa.embedding import Embedder
from tpd_qa.errors import IngestError
from tpd_qa.index.executor import (
    Executor,
    Job,
    LocalExecutor,
    Prepared,
    ProgressCallback,
    StageProgress,
    Work,
    embed_in_order,
    embed_prepared,
    make_chunker,
    text_key,
)
from tpd_qa.index.state import (
    FileStat,
    IndexState,
    StoredDocument,
    displayable,
    now,
)
from tpd_qa.ingest import OcrOptions, content_hash, discover, read_file
from tpd_qa.records import BuildReport, Chunk, Document, FileOutcome
from tpd_qa.sentences import SentenceVectors, chunk_sentences
from tpd_qa.sparse import SparseSettings

__all__ = ["ProgressCallback", "Syncer", "make_chunker"]


# A file modified this close to (or after) the scan that hashed it is hashed again next
# time: a later write within the file system's timestamp granularity could keep its stat.
_RACY_NS = 2_000_000_000
_Pending = list[tuple[StoredDocument, Prepared]]
_Groups = dict[str, list[tuple[Path, str]]]


@dataclass(frozen=True, slots=True)
class Syncer:
    """Computes next states; ``embedder`` and ``chunker`` are created on first call.

    ``executor`` does the reading, parsing, chunking and embedding of new and changed
    files; None means a :class:`LocalExecutor` over ``embedder`` and ``chunker``.
    """

    sparse: SparseSettings
    embedder: Callable[[], Embedder]
    chunker: Callable[[], Chunker]
    progress: bool = False
    on_progress: ProgressCallback | None = None
    #: How scanned pages are read (None: with Tesseract, no cache).
    ocr: OcrOptions | None = None
    executor: Executor | None = None
    #: Keep a vector of every answering sentence (:mod:`tpd_qa.sentences`).
    sentences: bool = True

    def _ocr_options(self) -> OcrOptions:
        options = self.ocr or OcrOptions()
        progress = self.on_progress
        if progress is None:
            return options
        return replace(options, on_page=lambda done, total: progress("ocr", done, total))

    def from_documents(self, documents: Iterable[Document]) -> IndexState:
        """A state of in-memory documents (sources and hashes unique; empty ones left out)."""
        chunker = self.chunker()
        prepared: list[Prepared] = []
        documents_kept: list[Document] = []
        seen: set[str] = set()
        for document in documents:
            for key in (f"source:{document.source}", f"sha256:{document.sha256}"):
                if key in seen:
                    raise ValueError(f"duplicate document {key}")
                seen.add(key)
            chunks = chunker.chunk(document)
            if chunks:
                documents_kept.append(document)
                prepared.append(Prepared(document.source, document, chunks))
        embedder = self.embedder()
        empty = IndexState(dimension=embedder.dimension)
        progress = StageProgress("embedding", self.progress, self.on_progress)
        embed_prepared(embedder, prepared, (), on_batch=progress.advance, total=progress.start)
        progress.close()
        pending = [
            (StoredDocument(document, 0, len(item.chunks), now()), item)
            for document, item in zip(documents_kept, prepared, strict=True)
        ]
        return self._with_sentences(empty, self._assemble(empty, [], pending))[0]

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
        ocr_options = self._ocr_options()
        jobs: list[tuple[Job, list[str]]] = []  # with the paths of identical copies
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
            aliases = [s for _, s in paths if s != source]
            if old is None:
                jobs.append((Job(path, source, ocr_options), aliases))
                continue
            status = "unchanged" if source == old.document.source else "renamed"
            reason = "" if status == "unchanged" else f"was {old.document.source}"
            if status == "renamed":
                moved.add(old.document.source)
            document = replace(old.document, source=source)
            stored = StoredDocument(document, 0, old.chunks, old.indexed_at)
            stored.aliases = aliases
            kept.append(stored)
            report.outcomes.append(FileOutcome(source, status, reason, old.chunks))

        # Vectors of the previous versions of the files being read again can be reused
        # for any chunk whose embedding text has not changed.
        reusable = (
            _rows_by_text(state, {job.source for job, _ in jobs})
            if not full and len(state.vectors)
            else {}
        )
        # sentence vectors the executor need not make (None: the index keeps none)
        kept_sentences: Collection[bytes] | None = None
        if self.sentences:
            store = None if full else state.sentences
            kept_sentences = () if store is None else store.rows.keys()
        work = self._work([job for job, _ in jobs], reusable, kept_sentences)
        pending: _Pending = []
        for (job, aliases), item in zip(jobs, work.prepared, strict=True):
            if item.document is None:
                report.outcomes.append(FileOutcome(job.source, "skipped", item.reason))
                continue
            assert item.vectors is not None
            for number, text in enumerate(item.texts()):
                row = reusable.get(text_key(text))
                if row is not None:
                    item.vectors[number] = state.vectors[row]
            stored = StoredDocument(item.document, 0, len(item.chunks), now())
            stored.aliases = aliases
            status = "changed" if job.source in previous_sources else "added"
            reason = "; ".join(item.document.notes)  # e.g. scanned pages OCR could not read
            report.outcomes.append(FileOutcome(job.source, status, reason, len(item.chunks)))
            pending.append((stored, item))

        present = {d.document.source for d in kept} | {s.document.source for s, _ in pending}
        present |= {o.source for o in report.outcomes} | moved
        for source in sorted(previous_sources):
            if source not in present:
                report.outcomes.append(FileOutcome(source, "removed"))

        if state.dimension is None and work.dimension is not None:
            state = replace(state, dimension=work.dimension)
        following = self._assemble(state, kept, pending)
        following.file_stats = stats
        following, report.embedded_sentences = self._with_sentences(
            state, following, full=full, made=work.sentences
        )
        report.documents = len(following.docs)
        report.chunks = len(following.chunks)
        report.embedded_chunks = work.embedded
        report.outcomes.sort(key=lambda o: (o.source, o.status))
        report.seconds = time.perf_counter() - started
        return following, report

    def _with_sentences(
        self,
        before: IndexState,
        after: IndexState,
        *,
        full: bool = False,
        made: dict[bytes, np.ndarray] | None = None,
    ) -> tuple[IndexState, int]:
        """``after`` with the vectors of exactly its rows' answering sentences.

        Sentences ``before`` already holds keep their vectors (unless ``full``); new ones
        take the vectors the executor ``made`` (by key), and the rest are embedded here.
        Rows unchanged since ``before`` (the same chunk list) keep its store as it is.
        Without :attr:`sentences`, ``after`` holds none. Returns the state and how many
        sentences were new.
        """
        store: SentenceVectors | None = None
        embedded = 0
        previous = None if full else before.sentences
        if not self.sentences or not after.chunks:
            store = None
        elif after.chunks is before.chunks and previous is not None:
            store = previous
        else:
            # rows of documents kept from ``before`` take their sentences from its store;
            # only new documents' passages are split into sentences
            old_first = {d.document.sha256: d.first_row for d in before.docs} if previous else {}
            chunk_keys: list[list[bytes]] = []
            texts: dict[bytes, str] = {}
            for stored in after.docs:
                first = old_first.get(stored.document.sha256)
                if previous is not None and first is not None:
                    chunk_keys.extend(previous.keys_of_row(first + i) for i in range(stored.chunks))
                    continue
                for chunk in after.chunks[stored.first_row : stored.first_row + stored.chunks]:
                    keys, found = chunk_sentences(chunk.text)
                    chunk_keys.append(keys)
                    texts.update(found)
            dimension = after.dimension or self.embedder().dimension
            store, embedded = (previous or SentenceVectors.empty(dimension)).updated(
                chunk_keys, texts, lambda new: self._embed_sentences(new, made or {})
            )
        return replace(after, sentences=store), embedded

    def _embed_sentences(self, texts: Sequence[str], made: dict[bytes, np.ndarray]) -> np.ndarray:
        """Vectors of sentence ``texts``: those an executor ``made``, the others embedded
        here (longest first, in batches) with progress."""
        keys = [text_key(text) for text in texts]
        todo = [number for number, key in enumerate(keys) if key not in made]
        if not todo:  # the executor made them all: no model needed in this process
            return np.stack([made[key] for key in keys]).astype(np.float32)
        embedder = self.embedder()
        out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
        for number, key in enumerate(keys):
            if key in made:
                out[number] = made[key]
        progress = StageProgress("sentences", self.progress, self.on_progress)
        progress.start(len(todo))
        embed_in_order(embedder, texts, todo, out, on_batch=progress.advance)
        progress.close()
        return out

    def _work(
        self, jobs: Sequence[Job], reusable: dict[bytes, int], sentences: Collection[bytes] | None
    ) -> Work:
        executor = self.executor or LocalExecutor(
            self.embedder, self.chunker, self.progress, self.on_progress
        )
        work = executor.run(jobs, reusable.keys(), sentences)
        if len(work.prepared) != len(jobs):  # an executor's bug, not the user's
            raise RuntimeError(f"executor returned {len(work.prepared)} of {len(jobs)} jobs")
        return work

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

    def _assemble(
        self,
        state: IndexState,
        kept: list[StoredDocument],
        pending: _Pending,
    ) -> IndexState:
        """Documents in source order with contiguous chunk rows, searchable."""
        old_rows = {d.document.sha256: d.first_row for d in state.docs}
        fresh: dict[str, tuple[list[Chunk], np.ndarray]] = {}
        dimension = state.dimension
        for stored, item in pending:
            assert item.vectors is not None
            fresh[stored.document.sha256] = (item.chunks, item.vectors)
            dimension = item.vectors.shape[1]
        docs = sorted(kept + [s for s, _ in pending], key=lambda d: d.document.source)
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
        following.rebuild_search(self.sparse, previous=state.sparse)
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
        text_key(state.keyword_text(row)): row
        for stored in state.docs
        if stored.document.source in sources
        for row in stored.rows
    }
