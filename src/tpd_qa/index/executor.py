"""Turning new and changed files into chunks and vectors: the work an update hands out.

:class:`Syncer <tpd_qa.index.sync.Syncer>` decides *what* must be read (the change set);
an :class:`Executor` decides *where* it is read, parsed, chunked and embedded. The
default, :class:`LocalExecutor`, does it in this process exactly as before; the Ray one
(:mod:`tpd_qa.index.cluster`) spreads it over an actor pool. Both get the same
:class:`Job` list and the same set of texts whose vectors the index already holds, and
both return one :class:`Prepared` per job, in job order, so the state written is the
same whichever ran.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tpd_qa.chunking import Chunker, ChunkerSettings
from tpd_qa.embedding import Embedder
from tpd_qa.errors import IngestError
from tpd_qa.index.state import embedding_text
from tpd_qa.ingest import OcrOptions, parse, read_file
from tpd_qa.records import Chunk, Document
from tpd_qa.sentences import chunk_sentences
from tpd_qa.text import text_key

__all__ = [
    "EMBED_BATCH",
    "Executor",
    "Job",
    "LocalExecutor",
    "Prepared",
    "ProgressCallback",
    "StageProgress",
    "Work",
    "embed_in_order",
    "embed_new_sentences",
    "make_chunker",
    "prepare",
    "text_key",
]

#: ``on_progress(stage, done, total)``; stage is "scanning", "ocr", "embedding" or
#: "sentences".
ProgressCallback = Callable[[str, int, int], None]

#: Texts handed to the embedder at once (it batches further itself).
EMBED_BATCH = 256
# Chunks stay this many tokens under the model's window (room for special tokens).
_WINDOW_MARGIN = 32


def make_chunker(settings: ChunkerSettings, embedder: Embedder) -> Chunker:
    """A chunker whose chunks fit ``embedder``'s window, counting tokens its way."""
    limit = embedder.max_tokens - _WINDOW_MARGIN
    if settings.max_tokens > limit:
        settings = replace(
            settings, max_tokens=limit, target_tokens=min(settings.target_tokens, limit)
        )
    return Chunker(settings, embedder.count_tokens)


@dataclass(frozen=True, slots=True)
class Job:
    """One file to read, parse and chunk: its path and the source name it is indexed as."""

    path: Path
    source: str
    #: How scanned pages are read (None: with Tesseract, no cache).
    ocr: OcrOptions | None = None


@dataclass(slots=True)
class Prepared:
    """What became of a :class:`Job`: a document with its chunks, or the reason it has none.

    ``vectors`` has a row per chunk; rows of texts in the executor's ``known`` set are
    left as zeros (the caller fills them from the stored vectors).
    """

    source: str
    document: Document | None = None
    chunks: list[Chunk] = field(default_factory=list)
    vectors: np.ndarray | None = None
    reason: str = ""

    def texts(self) -> list[str]:
        """The embedding text of each chunk."""
        title = self.document.title if self.document else ""
        return [embedding_text(title, chunk.section, chunk.text) for chunk in self.chunks]


@dataclass(slots=True)
class Work:
    """An executor's answer: one :class:`Prepared` per job (job order), how many chunk
    texts it embedded, and the model's dimension (None only when there were no jobs).

    ``sentences`` holds vectors of answering sentences (:mod:`tpd_qa.sentences`) the
    executor embedded beside the passages, by :func:`text_key`; the caller embeds any
    sentence it needs that is neither there nor already stored.
    """

    prepared: list[Prepared]
    embedded: int = 0
    dimension: int | None = None
    sentences: dict[bytes, np.ndarray] = field(default_factory=dict)


class Executor(Protocol):
    """Reads, parses, chunks and embeds the files of a change set."""

    def run(
        self,
        jobs: Sequence[Job],
        known: Collection[bytes],
        sentences: Collection[bytes] | None = None,
    ) -> Work:
        """A :class:`Prepared` per job; texts whose :func:`text_key` is in ``known``
        are not embedded. ``sentences``: the keys of the sentence vectors the index
        keeps (None: it keeps none); an executor that works elsewhere embeds the other
        sentences of its documents there (``Work.sentences``)."""
        ...


def prepare(job: Job, chunker: Chunker) -> Prepared:
    """Read, parse and chunk one file (no embedding); a file that fails says why."""
    try:
        document = parse(read_file(job.path), job.source, ocr=job.ocr)
    except IngestError as exc:
        return Prepared(job.source, reason=exc.reason)
    chunks = chunker.chunk(document)
    if not chunks:
        return Prepared(job.source, reason="no text to index")
    return Prepared(job.source, document, chunks)


def embed_in_order(
    embedder: Embedder,
    texts: Sequence[str],
    todo: Sequence[int],
    out: np.ndarray,
    *,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Embed ``texts[i]`` for each ``i`` in ``todo`` into ``out[i]``, longest first.

    Longest first across the whole call, not per batch: batches of like lengths waste
    little compute on padding. ``on_batch(n)`` is told after each batch of ``n`` texts.
    """
    order = sorted(todo, key=lambda number: -len(texts[number]))
    for start in range(0, len(order), EMBED_BATCH):
        rows = order[start : start + EMBED_BATCH]
        out[rows] = embedder.embed_batch([texts[row] for row in rows])
        if on_batch:
            on_batch(len(rows))


def embed_prepared(
    embedder: Embedder,
    prepared: Sequence[Prepared],
    known: Collection[bytes],
    *,
    on_batch: Callable[[int], None] | None = None,
    total: Callable[[int], None] | None = None,
) -> int:
    """Give each prepared document its ``vectors``; returns how many texts were embedded."""
    texts = [text for item in prepared for text in item.texts()]
    todo = [number for number, text in enumerate(texts) if text_key(text) not in known]
    if total:
        total(len(todo))
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    embed_in_order(embedder, texts, todo, out, on_batch=on_batch)
    offset = 0
    for item in prepared:
        item.vectors = out[offset : offset + len(item.chunks)]
        offset += len(item.chunks)
    return len(todo)


def embed_new_sentences(
    embedder: Embedder, prepared: Sequence[Prepared], known: Collection[bytes]
) -> dict[bytes, np.ndarray]:
    """Vectors of the answering sentences of ``prepared``'s chunks whose key is not in
    ``known``, each distinct sentence once, by key."""
    new: dict[bytes, str] = {}
    for item in prepared:
        for chunk in item.chunks:
            _keys, found = chunk_sentences(chunk.text)
            for key, sentence in found.items():
                if key not in known:
                    new.setdefault(key, sentence)
    texts = list(new.values())
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    embed_in_order(embedder, texts, range(len(texts)), out)
    return dict(zip(new, out, strict=True))


@dataclass(frozen=True, slots=True)
class LocalExecutor:
    """Does the work in this process: parse and chunk every job, then embed every new
    text, longest first, in batches of :data:`EMBED_BATCH`.

    ``embedder`` and ``chunker`` are created on first need, so a change set of files
    that all fail to parse loads no model. Sentences are left to the caller (the same
    process: it embeds them with its own progress stage).
    """

    embedder: Callable[[], Embedder]
    chunker: Callable[[], Chunker]
    progress: bool = False
    on_progress: ProgressCallback | None = None

    def run(
        self,
        jobs: Sequence[Job],
        known: Collection[bytes],
        sentences: Collection[bytes] | None = None,
    ) -> Work:
        if not jobs:
            return Work([])
        chunker = self.chunker()
        prepared = [prepare(job, chunker) for job in jobs]
        embedder = self.embedder()  # loaded by the chunker already (it counts tokens)
        if not any(item.chunks for item in prepared):
            return Work(prepared, 0, embedder.dimension)
        progress = StageProgress("embedding", self.progress, self.on_progress)
        embedded = embed_prepared(
            embedder, prepared, known, on_batch=progress.advance, total=progress.start
        )
        progress.close()
        return Work(prepared, embedded, embedder.dimension)


#: How each stage's progress bar is labelled: (description, unit).
_BARS = {"embedding": ("Embedding", "chunk"), "sentences": ("Embedding sentences", "sentence")}


@dataclass(slots=True)
class StageProgress:
    """One build stage's progress: a tqdm bar (when ``enabled``) and ``callback``
    (``on_progress(stage, done, total)``), both told the total once and each batch done."""

    stage: str
    enabled: bool = False
    callback: ProgressCallback | None = None
    total: int = 0
    done: int = 0
    bar: Any = None

    def start(self, total: int) -> None:
        description, unit = _BARS[self.stage]
        self.total = total
        self.bar = progress_bar(total, self.enabled, description, unit)

    def advance(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
        if self.callback:
            self.callback(self.stage, self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_bar(total: int, enabled: bool, desc: str, unit: str) -> Any:
    """A tqdm bar (disabled unless ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False)
