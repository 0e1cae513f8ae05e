"""An index on disk: generations, manifest, checksums, atomic writes, the lock, debris.

On disk an index is a directory::

    .tpd-qa-index          marker: this folder is ours (the rules are in ``folder``)
    manifest.json          the commit point: format, model, settings, documents, file checksums
    gen-<id>/documents.jsonl   one document per line: source, title, kind, text, pages, headings,
                               page_ocr (per page: OCR confidence, or null for a text layer)
    gen-<id>/chunks.jsonl      one chunk per line: document row, start, end, page, section
    gen-<id>/vectors.npy       float32 (chunks x dimension), row i is chunk i
    gen-<id>/sentence_keys.npy     uint8 (sentences x 16): digest of each answering sentence
    gen-<id>/sentence_vectors.npy  float16 (sentences x dimension), see ``tpd_qa.sentences``
    gen-<id>/sentence_offsets.npy  int64 (chunks + 1): chunk i's sentences are
    gen-<id>/sentence_index.npy    int64 sentence rows index[offsets[i]:offsets[i + 1]]
    gen-<id>/files.jsonl       size, times and inode of each hashed corpus file (skip re-hashing)
    gen-<id>/dense.faiss       FAISS graph index (only for large collections)
    gen-<id>/sparse/           BM25 matrices (.npy), vocabulary (.json), token ids (tokens.*.npy)
    ocr-cache/<ab>/<hash>.json one OCR reading per page image; kept across generations,
                               rebuilds and model changes (see ``tpd_qa.ingest.ocr``)

A save writes a new generation directory, then atomically replaces ``manifest.json``;
a crash at any moment leaves the previous manifest and generation intact.

:class:`IndexStore` is all the ``Index`` facade needs of storage; :class:`DirectoryStore`
is this layout. Another backend (a vector database) implements the same five methods.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tpd_qa.chunking import ChunkerSettings
from tpd_qa.dense import DenseIndex
from tpd_qa.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
)
from tpd_qa.index.folder import (
    MARKER,
    _atomic_write_text,
    _fsync_dir,
    _fsync_tree,
    _remove_stale,
    check_folders,
    claim_index_dir,
    index_lock,
)
from tpd_qa.index.state import FileStat, IndexSettings, IndexState, Snapshot, StoredDocument, now
from tpd_qa.records import Chunk, Document
from tpd_qa.sentences import SentenceVectors
from tpd_qa.sparse import SparseIndex, SparseSettings
from tpd_qa.version import __version__

__all__ = [
    "FORMAT_VERSION",
    "MARKER",
    "DirectoryStore",
    "IndexStore",
    "check_folders",
    "claim_index_dir",
    "index_lock",
    "read_manifest",
    "remove_debris",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


class IndexStore(Protocol):
    """Where an index is kept: all the ``Index`` facade asks of storage."""

    def exists(self) -> bool:
        """True when an index has been saved here."""
        ...

    def model(self) -> tuple[str, int]:
        """The model name and vector dimension the stored index was built with (cheap)."""
        ...

    def save(self, snapshot: Snapshot) -> None:
        """Replace what is stored with ``snapshot``, atomically."""
        ...

    def load(self, *, verify: bool = True) -> Snapshot:
        """What ``save`` stored; ``verify`` checks it against its checksums first."""
        ...

    def lock(self, *, wait: float = 0.0) -> AbstractContextManager[None]:
        """Hold the rebuild lock; IndexLockedError after ``wait`` seconds."""
        ...


class DirectoryStore:
    """An index in a folder: generations committed by replacing ``manifest.json``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @property
    def manifest_path(self) -> Path:
        return self.directory / "manifest.json"

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def model(self) -> tuple[str, int]:
        manifest = read_manifest(self.directory)
        return str(manifest["model"]["name"]), int(manifest["model"]["dimension"])

    def lock(self, *, wait: float = 0.0) -> AbstractContextManager[None]:
        return index_lock(self.directory, wait=wait)

    def save(self, snapshot: Snapshot) -> None:
        state = snapshot.state
        if state.chunks and (state.dense is None or state.sparse is None):  # from Milvus
            state.rebuild_search(snapshot.settings.sparse)
        generation, files = self.stage(snapshot)
        self.commit(snapshot, generation, files)

    def stage(self, snapshot: Snapshot, *, search_files: bool = True) -> tuple[str, dict[str, Any]]:
        """Write ``snapshot`` as a new generation folder (not yet in use); its name and files.

        ``search_files=False`` leaves out the FAISS graph and BM25 matrices (a backend
        that searches elsewhere does not need them).
        """
        directory = self.directory
        claim_index_dir(directory)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        generation = f"gen-{stamp}-{os.getpid()}-{time.perf_counter_ns() % 10**6:06d}"
        staging = directory / f".{generation}.partial"
        staging.mkdir()
        try:
            _write_generation(staging, snapshot.state, search_files=search_files)
            files = _checksums(staging)
            _fsync_tree(staging)
            os.replace(staging, directory / generation)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a failed save leaves nothing behind
            raise
        _fsync_dir(directory)
        return generation, files

    def discard(self, generation: str) -> None:
        """Delete a staged generation that will not be committed."""
        shutil.rmtree(self.directory / Path(generation).name, ignore_errors=True)

    def commit(
        self,
        snapshot: Snapshot,
        generation: str,
        files: dict[str, Any],
        backend: dict[str, Any] | None = None,
    ) -> None:
        """Make the staged ``generation`` the index (replace the manifest), drop the others.

        ``backend`` is recorded in the manifest by a store that searches elsewhere.
        """
        manifest = _manifest(snapshot, generation, files)
        if backend is not None:  # searched there: no FAISS or BM25 files here
            manifest["backend"] = backend
            manifest["dense"] = {"kind": "none"}
        try:
            _atomic_write_text(self.manifest_path, json.dumps(manifest, indent=2) + "\n")
        except BaseException:
            self.discard(generation)
            raise
        _remove_stale(self.directory, keep=generation)
        log.info("saved index %s (%d chunks)", generation, len(snapshot.state.chunks))

    def load(self, *, verify: bool = True) -> Snapshot:
        return self.load_manifest(read_manifest(self.directory), verify=verify)

    def load_manifest(self, manifest: dict[str, Any], *, verify: bool = True) -> Snapshot:
        """The snapshot ``manifest`` describes (search structures only if it has them)."""
        directory = self.directory
        generation = directory / manifest["generation"]
        if verify:
            _verify_files(generation, manifest["files"])
        try:
            settings = IndexSettings(
                model=manifest["model"]["name"],
                chunker=ChunkerSettings(**manifest["chunker"]),
                sparse=SparseSettings(**manifest["sparse"]),
                extraction=int(manifest.get("extraction", 1)),  # 1: before it was recorded
                sentences=bool(manifest.get("sentences", True)),  # before: on from now
            )
        except (TypeError, ValueError) as exc:
            raise IndexMismatchError(
                f"index settings not understood ({exc})", remedy="rebuild_full"
            ) from exc
        try:
            state = _read_generation(generation, manifest, settings.sparse)
        except (KeyError, TypeError, ValueError, EOFError, OSError) as exc:
            raise IndexCorruptError(
                f"index at {directory} is damaged ({type(exc).__name__}: {exc})",
                remedy="rebuild_full",
            ) from exc
        except IndexCorruptError as exc:
            if exc.remedy is not None:  # already says what is wrong and what to do
                raise
            raise IndexCorruptError(
                f"index at {directory} is damaged ({exc})", remedy="rebuild_full"
            ) from exc
        return Snapshot(
            settings,
            settings.model,
            state,
            chunker_record=dict(manifest["chunker"]),
            sparse_record=dict(manifest["sparse"]),
        )


# ---------------------------------------------------------------------- manifest


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of the index in ``directory``; typed errors when absent or unusable."""
    path = Path(directory) / "manifest.json"
    if not path.is_file():
        raise IndexNotFoundError(f"no index in {directory}", remedy="build")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"{path} is unreadable ({exc})", remedy="rebuild_full") from exc
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{path} is not an index manifest", remedy="rebuild_full")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format {version} is not the format {FORMAT_VERSION} this tpd_qa reads",
            remedy="rebuild_full",
        )
    required = ("generation", "model", "chunker", "sparse", "dense", "counts", "files", "documents")
    missing = [key for key in required if key not in manifest]
    if missing or not str(manifest.get("generation", "")).startswith("gen-"):
        raise IndexCorruptError(
            f"{path} lacks {', '.join(missing) or 'generation'}", remedy="rebuild_full"
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
        raise IndexCorruptError(f"{path} is malformed", remedy="rebuild_full")
    return manifest


def _manifest(snapshot: Snapshot, generation: str, files: dict[str, Any]) -> dict[str, Any]:
    state, settings = snapshot.state, snapshot.settings
    kind = state.dense.kind if state.dense is not None else "none"
    return {
        "format_version": FORMAT_VERSION,
        "tpd_qa_version": __version__,
        "generation": generation,
        "saved_at": now(),
        "model": {"name": snapshot.model, "dimension": int(state.vectors.shape[1])},
        "chunker": settings.chunker.to_dict(),
        "sparse": settings.sparse.to_dict(),
        "extraction": settings.extraction,
        "sentences": settings.sentences,
        "dense": {"kind": kind},
        "counts": {"documents": len(state.docs), "chunks": len(state.chunks)},
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
            for d in state.docs
        ],
        "files": files,
    }


# ---------------------------------------------------------------------- generations


def _write_generation(staging: Path, state: IndexState, *, search_files: bool = True) -> None:
    _write_jsonl(staging / "documents.jsonl", (_document_record(d) for d in state.docs))
    _write_jsonl(
        staging / "chunks.jsonl",
        (_chunk_record(c, int(state.row_doc[i])) for i, c in enumerate(state.chunks)),
    )
    with open(staging / "vectors.npy", "wb") as handle:
        np.save(handle, state.vectors, allow_pickle=False)
    if state.sentences is not None:
        state.sentences.save(staging)
    _write_jsonl(
        staging / "files.jsonl",
        ({"source": source, **asdict(stat)} for source, stat in state.file_stats.items()),
    )
    if not search_files:
        return
    assert state.dense is not None and state.sparse is not None
    if state.dense.kind != "flat":
        state.dense.save(staging / "dense.faiss")
    (staging / "sparse").mkdir()
    state.sparse.save(staging / "sparse")


def _read_generation(
    generation: Path, manifest: dict[str, Any], sparse: SparseSettings
) -> IndexState:
    docs = [_document_from_record(record) for record in _read_jsonl(generation / "documents.jsonl")]
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
            f"vector file holds {vectors.shape}, expected ({len(chunks)}, {dimension})",
            remedy="rebuild_full",
        )
    expected = manifest["counts"]
    if expected["chunks"] != len(chunks) or expected["documents"] != len(docs):
        raise IndexCorruptError(
            "manifest counts do not match the stored chunks", remedy="rebuild_full"
        )
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    stats: dict[str, FileStat] = {}
    stats_file = generation / "files.jsonl"  # absent in indexes saved before it existed
    if stats_file.is_file():
        stats = {
            str(record.pop("source")): FileStat(**record) for record in _read_jsonl(stats_file)
        }
    sentences = SentenceVectors.load(generation)
    if sentences is not None and (
        sentences.dimension != dimension or sentences.chunk_rows != len(chunks)
    ):
        raise IndexCorruptError(
            f"sentence vectors of dimension {sentences.dimension} for {sentences.chunk_rows} "
            f"chunks, expected {dimension} and {len(chunks)}",
            remedy="rebuild_full",
        )
    state = IndexState(
        docs=docs,
        chunks=chunks,
        vectors=vectors,
        row_doc=np.asarray(row_doc, dtype=np.int64),
        file_stats=stats,
        dimension=dimension,
        sentences=sentences,
    )
    if manifest["dense"]["kind"] == "none":  # searched elsewhere: no local structures
        return state
    if manifest["dense"]["kind"] != "flat":
        dense = DenseIndex.load(generation / "dense.faiss", vectors)
    else:
        dense = DenseIndex.build(vectors, kind="flat")
    if dense.size != len(chunks):
        raise IndexCorruptError("vector index size differs from chunk count", remedy="rebuild_full")
    state.dense = dense
    state.sparse = SparseIndex.load(generation / "sparse", sparse, len(chunks))
    return state


def _document_record(stored: StoredDocument) -> dict[str, Any]:
    return {
        **stored.document.to_record(),
        "first_row": stored.first_row,
        "chunks": stored.chunks,
        "indexed_at": stored.indexed_at,
        "duplicates": stored.aliases,
    }


def _document_from_record(record: dict[str, Any]) -> StoredDocument:
    return StoredDocument(
        Document.from_record(record),
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


# ---------------------------------------------------------------------- files


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
            f"index data folder {generation.name} is missing", remedy="rebuild_full"
        )
    for name, expected in files.items():
        path = generation / name
        if not path.is_file():
            raise IndexCorruptError(f"index file {name} is missing", remedy="rebuild_full")
        if path.stat().st_size != expected["bytes"] or _file_digest(path) != expected["sha256"]:
            raise IndexCorruptError(
                f"index file {name} is damaged (checksum mismatch)", remedy="rebuild_full"
            )


# ---------------------------------------------------------------------- debris


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
