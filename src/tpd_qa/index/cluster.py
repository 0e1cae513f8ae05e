"""Reading, parsing, chunking and embedding on a Ray cluster (``tpd-qa index --ray``).

:class:`RayExecutor` is an :class:`~tpd_qa.index.executor.Executor`: the change set goes
through a Ray Data pipeline (``from_items`` -> ``map_batches`` over an actor pool), each
actor loading the model once and then reading, parsing, chunking and embedding whole
batches of files. Files are sorted by size before they are cut into batches, and the
chunks of a batch are embedded longest first, so batches hold texts of like lengths.
What to read and what the next state is stays the single-machine logic of
:mod:`tpd_qa.index.sync`; only this work moves.

``ray`` is an optional dependency (``pip install 'tpd-qa[ray]'``), imported only when a
pipeline runs. Every file must be readable at the same path on every node (a shared
file system), and tpd_qa must be installed there, as on the driver.

Faults: an actor that dies (a killed process, a lost node) is restarted and its batch
retried up to ``retries`` times by Ray; past that, or on any other failure, the run
raises :class:`~tpd_qa.errors.ClusterError` (one line) before anything is written, so
the previous index stays as it was.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from tpd_qa.chunking import ChunkerSettings
from tpd_qa.embedding import Embedder, make_embedder
from tpd_qa.errors import ClusterError, ConfigError
from tpd_qa.index.executor import (
    Job,
    Prepared,
    ProgressCallback,
    Work,
    embed_new_sentences,
    embed_prepared,
    make_chunker,
    prepare,
    progress_bar,
    text_key,
)
from tpd_qa.ingest import OcrOptions
from tpd_qa.records import Chunk, Document
from tpd_qa.sentences import chunk_sentences

__all__ = ["RayExecutor", "check_address"]

log = logging.getLogger(__name__)

#: Documents per batch handed to an actor (a batch is read, chunked and embedded at once).
DEFAULT_BATCH = 32


def check_address(address: str) -> str:
    """``address`` if it is a form Ray accepts here: ``local``, ``auto``,
    ``ray://host:port`` or ``host:port``; else a ConfigError."""
    address = address.strip()
    if address in ("local", "auto"):
        return address
    host, port = _host_port(address)
    if not host or port is None:
        raise ConfigError(
            f"--ray {address!r} is not an address: use local, auto, ray://HOST:PORT or HOST:PORT"
        )
    return address


def _host_port(address: str) -> tuple[str, int | None]:
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        return parts.hostname or "", parts.port
    except ValueError:
        return "", None


@dataclass(frozen=True)
class RayExecutor:
    """Runs the work of an update as a Ray Data pipeline.

    ``address``: ``local`` starts a Ray instance on this machine for the run, ``auto``
    joins the cluster this machine belongs to (``ray start``), ``ray://HOST:PORT`` goes
    through Ray Client, ``HOST:PORT`` joins a head node's GCS. If this process is
    already connected to Ray (``ray.init`` was called), that connection is used.
    ``workers`` is the number of actors (default: one per CPU of the cluster).
    """

    model: str
    chunker: ChunkerSettings
    address: str = "local"
    workers: int | None = None
    batch_size: int = DEFAULT_BATCH
    retries: int = 3
    connect_timeout: float = 10.0
    embedder_factory: Callable[[str], Embedder] = make_embedder
    progress: bool = False
    on_progress: ProgressCallback | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", check_address(self.address))
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"Ray workers must be at least 1, got {self.workers}")
        if self.batch_size < 1:
            raise ConfigError(f"Ray batch size must be at least 1, got {self.batch_size}")

    def run(
        self,
        jobs: Sequence[Job],
        known: Collection[bytes],
        sentences: Collection[bytes] | None = None,
    ) -> Work:
        if not jobs:
            return Work([])
        ray = _import_ray()
        known_sentences = None if sentences is None else frozenset(sentences)
        with _connected(ray, self.address, self.connect_timeout, self.workers):
            try:
                prepared, vectors = self._pipeline(ray, jobs, frozenset(known), known_sentences)
            except (ClusterError, KeyboardInterrupt):
                raise
            except Exception as exc:
                raise ClusterError(
                    f"the Ray indexing pipeline failed ({_short(exc)}); "
                    "the previous index is unchanged"
                ) from exc
        embedded = sum(text_key(text) not in known for item in prepared for text in item.texts())
        dimension = next(
            (item.vectors.shape[1] for item in prepared if item.vectors is not None), None
        )
        return Work(prepared, embedded, dimension, vectors)

    def _pipeline(
        self,
        ray: Any,
        jobs: Sequence[Job],
        known: frozenset[bytes],
        sentences: frozenset[bytes] | None,
    ) -> tuple[list[Prepared], dict[bytes, np.ndarray]]:
        from ray.data import DataContext

        context = DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # Largest files first: neighbouring files, hence batches, are of like length.
        order = sorted(range(len(jobs)), key=lambda n: -_size(jobs[n]))
        items = [{"number": n, "job": _job_record(jobs[n])} for n in order]
        blocks = max(1, math.ceil(len(items) / self.batch_size))
        with warnings.catch_warnings():
            # Ray 2.60 deprecates passing max_restarts / max_task_retries this way but
            # offers no other place for them yet (removal is announced for Ray 2.64).
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
                _DocumentWorker,
                fn_constructor_kwargs={
                    "model": self.model,
                    "chunker": self.chunker,
                    "known": known,
                    "sentences": sentences,
                    "factory": self.embedder_factory,
                },
                batch_size=self.batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=min(workers, blocks)),
                num_cpus=1,
                max_restarts=self.retries,
                max_task_retries=self.retries,
            )
        results: list[Prepared | None] = [None] * len(jobs)
        vectors: dict[bytes, np.ndarray] = {}
        bar = progress_bar(len(jobs), self.progress, "Indexing on Ray", "doc")
        for done, row in enumerate(dataset.iter_rows(), start=1):
            results[int(row["number"])] = _prepared_from_record(row["result"], row["vectors"])
            vectors.update(_sentences_from_record(row["result"], row["sentences"]))
            bar.update(1)
            if self.on_progress:
                self.on_progress("embedding", done, len(jobs))
        bar.close()
        missing = [jobs[n].source for n, item in enumerate(results) if item is None]
        if missing:
            raise ClusterError(f"the Ray pipeline returned no result for {missing[0]}")
        return [item for item in results if item is not None], vectors


class _DocumentWorker:
    """One actor of the pool: loads the model once, then reads, chunks and embeds batches
    (passages, and the new answering sentences when the index keeps sentence vectors)."""

    def __init__(
        self,
        model: str,
        chunker: ChunkerSettings,
        known: frozenset[bytes],
        sentences: frozenset[bytes] | None,
        factory: Callable[[str], Embedder],
    ) -> None:
        self.embedder = factory(model)
        self.chunker = make_chunker(chunker, self.embedder)
        self.known = known
        self.sentences = sentences

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        jobs = [_job_from_record(str(record)) for record in batch["job"]]
        prepared = [prepare(job, self.chunker) for job in jobs]
        embed_prepared(self.embedder, prepared, self.known)
        new: dict[bytes, np.ndarray] = {}
        if self.sentences is not None:
            new = embed_new_sentences(self.embedder, prepared, self.sentences)
        records = [_prepared_record(item, new) for item in prepared]
        return {
            "number": [int(n) for n in batch["number"]],
            "result": [record for record, _vectors, _sentences in records],
            "vectors": [vectors for _record, vectors, _sentences in records],
            "sentences": [sentences for _record, _vectors, sentences in records],
        }


# What travels between the driver and the actors: JSON text and raw float32 bytes, never
# pickled objects (a page-progress callback, for one, cannot leave this process).


def _job_record(job: Job) -> str:
    ocr = job.ocr
    return json.dumps(
        {
            "path": str(job.path),
            "source": job.source,
            "ocr": None if ocr is None else _ocr_record(ocr),
        }
    )


def _ocr_record(ocr: OcrOptions) -> dict[str, Any]:
    """Every OCR option but the page-progress callback, which cannot travel."""
    record = {f.name: getattr(ocr, f.name) for f in fields(ocr) if f.name != "on_page"}
    if record["cache_dir"] is not None:
        record["cache_dir"] = str(record["cache_dir"])
    return record


def _job_from_record(text: str) -> Job:
    record = json.loads(text)
    ocr = record["ocr"]
    options = None
    if ocr is not None:
        cache_dir = None if ocr["cache_dir"] is None else Path(ocr["cache_dir"])
        options = OcrOptions(**{**ocr, "cache_dir": cache_dir})
    return Job(Path(record["path"]), record["source"], options)


def _prepared_record(
    item: Prepared, new_sentences: dict[bytes, np.ndarray]
) -> tuple[str, bytes, bytes]:
    """``item`` as JSON (document, chunk spans, vector shape, keys of its new sentences),
    its vectors' bytes and its new sentences' vectors' bytes. Each vector of
    ``new_sentences`` travels once, with the first item that has the sentence (it is
    taken out of the dictionary)."""
    document = item.document
    vectors = None if item.vectors is None else np.ascontiguousarray(item.vectors, np.float32)
    sentences: dict[bytes, np.ndarray] = {}
    for chunk in item.chunks:
        for key in chunk_sentences(chunk.text)[0]:
            if key in new_sentences:
                sentences[key] = new_sentences.pop(key)
    record = {
        "source": item.source,
        "reason": item.reason,
        "document": None if document is None else document.to_record(),
        "notes": [] if document is None else list(document.notes),
        "chunks": [[c.start, c.end, c.page, c.section] for c in item.chunks],
        "shape": None if vectors is None else list(vectors.shape),
        "sentence_keys": [key.hex() for key in sentences],
    }
    sentence_bytes = b"".join(np.asarray(v, np.float32).tobytes() for v in sentences.values())
    # ASCII JSON: a lone surrogate in a text survives (Arrow strings must be UTF-8)
    return (
        json.dumps(record),
        b"" if vectors is None else vectors.tobytes(),
        sentence_bytes,
    )


def _prepared_from_record(text: str, data: bytes) -> Prepared:
    record = json.loads(text)
    document = None
    chunks: list[Chunk] = []
    if record["document"] is not None:
        document = replace(Document.from_record(record["document"]), notes=tuple(record["notes"]))
        chunks = [
            Chunk(document.sha256, start, end, document.text[start:end], page, section)
            for start, end, page, section in record["chunks"]
        ]
    vectors = None
    if record["shape"] is not None:
        vectors = np.frombuffer(data, dtype=np.float32).reshape(record["shape"]).copy()
    return Prepared(record["source"], document, chunks, vectors, record["reason"])


def _sentences_from_record(text: str, data: bytes) -> dict[bytes, np.ndarray]:
    """The new sentences' vectors a worker sent with a prepared document, by key."""
    keys = [bytes.fromhex(key) for key in json.loads(text)["sentence_keys"]]
    if not keys:
        return {}
    vectors = np.frombuffer(data, dtype=np.float32).reshape(len(keys), -1)
    return {key: vector.copy() for key, vector in zip(keys, vectors, strict=True)}


def _size(job: Job) -> int:
    try:
        return os.stat(job.path).st_size
    except OSError:
        return 0


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ConfigError(
            f"--ray needs Ray Data, which is not installed ({exc}); "
            "install it with: pip install 'tpd-qa[ray]'"
        ) from exc
    return ray


@contextmanager
def _connected(ray: Any, address: str, timeout: float, workers: int | None) -> Iterator[None]:
    """Connected to Ray for the duration; disconnects (and stops a local instance) after,
    unless the connection was there before."""
    if ray.is_initialized():
        yield
        return
    options: dict[str, Any] = {
        "logging_level": logging.WARNING,
        "log_to_driver": False,
        "configure_logging": True,
    }
    if address == "local":
        options["include_dashboard"] = False
        options["num_cpus"] = max(os.cpu_count() or 1, workers or 1)
    else:
        _probe(address, timeout)
    try:
        ray.init(address=address, **options)
    except Exception as exc:
        where = "start a local Ray instance" if address == "local" else f"connect to {address}"
        raise ClusterError(f"cannot {where}: {_short(exc)}") from exc
    try:
        yield
    finally:
        ray.shutdown()


def _probe(address: str, timeout: float) -> None:
    """Fail within ``timeout`` seconds, in one line, if nothing listens at ``address``."""
    if address == "auto":
        return  # Ray finds the local cluster's address itself and fails fast without one
    host, port = _host_port(address)
    assert port is not None  # check_address made sure
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({reason}); check the address "
            "and that the cluster is running"
        ) from exc


def _short(exc: BaseException) -> str:
    """The gist of an exception in one line (Ray's messages span many)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
