"""Indexing on Ray (``build_index(ray=...)``, ``tpd-qa index --ray``): only the work moves.

One local Ray instance (2 CPUs) serves the whole module: starting Ray is slow. The
hashing embedder (model ``hash``) means actors need no weights.

* the index built through Ray equals the single-process one: same documents, chunks and
  citations, vectors equal within float tolerance, same answers;
* an incremental second run through Ray reads and embeds only the changed documents,
  exactly as many chunks as the single-process path embeds;
* a worker process killed in the middle of a batch is restarted and its batch retried;
  killed every time, the run fails with one ClusterError and the previous index loads;
* ``--ray ray://127.0.0.1:1`` (nothing listens) fails within seconds with one line.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import ray

from conftest import ROOT
from hardening_support import assert_clean_error, run_cli
from tpd_qa import api
from tpd_qa.embedding import Embedder, HashEmbedder
from tpd_qa.errors import ClusterError
from tpd_qa.index import Index, IndexSettings
from tpd_qa.index.cluster import RayExecutor
from tpd_qa.index.sync import Syncer
from tpd_qa.text import text_key

# Starting Ray and its worker processes takes a while on a busy 2-core machine: in the
# README's test command (which runs everything), not in the quick suite.
pytestmark = pytest.mark.slow

MODEL = "hash"
QUESTIONS = ["semiconductor supply chain", "tokamak fusion Naka", "lunar surface Artemis"]


@pytest.fixture(scope="module", autouse=True)
def ray_cluster() -> Iterator[None]:
    """A local Ray instance for the module; workers import tpd_qa and this module."""
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}},
    )
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def big_corpus(corpus: Path) -> Path:
    """The shared corpus plus enough small files for several batches on both actors."""
    for number in range(12):
        words = " ".join(f"topic{number} word{k}" for k in range(40 + 15 * number))
        (corpus / f"extra-{number:02d}.md").write_text(
            f"# Extra {number}\n\n{words}.\n\n## Part two\n\nMore on topic{number}.\n",
            encoding="utf-8",
        )
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    return corpus


def snapshot(index_dir: Path) -> tuple[list[object], list[object], np.ndarray, list[object]]:
    """What an index on disk holds: documents, chunks, vectors (sentence vectors after the
    passages', ordered by key), answers."""
    index = Index.load(index_dir)
    store = index.state.sentences
    assert store is not None
    order = sorted(range(len(store)), key=lambda row: store.keys[row].tobytes())
    docs = [(d.source, d.sha256, d.chunks, d.duplicates) for d in index.documents()]
    answers = [
        [(p.source, p.page, p.section, p.start, p.end) for p in index.search(q, 5)]
        for q in QUESTIONS
    ]
    vectors = np.concatenate([index.state.vectors, store.vectors[order].astype(np.float32)])
    return docs, index.chunks(), vectors, answers


def assert_same_index(left: Path, right: Path) -> None:
    docs_a, chunks_a, vectors_a, answers_a = snapshot(left)
    docs_b, chunks_b, vectors_b, answers_b = snapshot(right)
    assert docs_a == docs_b
    assert chunks_a == chunks_b
    assert vectors_a.shape == vectors_b.shape
    np.testing.assert_allclose(vectors_a, vectors_b, atol=1e-6)
    assert answers_a == answers_b


def statuses(report: api.BuildReport) -> list[tuple[str, str, str, int]]:
    return [(o.source, o.status, o.reason, o.chunks) for o in report.outcomes]


_embed_sentences = Syncer._embed_sentences


def _no_sentences_here(self: Syncer, texts: Sequence[str], made: dict[bytes, np.ndarray]) -> object:
    """Syncer._embed_sentences, refusing to embed any sentence in this process."""
    missing = [text for text in texts if text_key(text) not in made]
    assert not missing, f"the driver would embed {len(missing)} of {len(texts)}: {missing[:3]}"
    return _embed_sentences(self, texts, made)


def test_ray_index_equals_single_process_and_updates_incrementally(
    big_corpus: Path, tmp_path: Path
) -> None:
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    local = api.build_index(big_corpus, local_dir, model=MODEL)
    # the actors embed the sentences too: this (driver) process embeds none
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Syncer, "_embed_sentences", _no_sentences_here)
        distributed = api.build_index(big_corpus, ray_dir, model=MODEL, ray="local", ray_workers=2)
    assert statuses(distributed) == statuses(local)
    assert ("broken.pdf", "skipped") in [(o.source, o.status) for o in distributed.outcomes]
    assert distributed.embedded_chunks == local.embedded_chunks == local.chunks > 20
    assert distributed.embedded_sentences == local.embedded_sentences > local.chunks
    assert_same_index(local_dir, ray_dir)

    # second run: one file edited (one paragraph), one added, one removed
    notes = big_corpus / "notes.md"
    notes.write_text(
        notes.read_text(encoding="utf-8") + "\n## Added\n\nA new paragraph on tokamaks.\n",
        encoding="utf-8",
    )
    (big_corpus / "new.txt").write_text("Quantum research talent exchange.\n", encoding="utf-8")
    (big_corpus / "extra-03.md").unlink()
    local = api.build_index(big_corpus, local_dir, model=MODEL)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Syncer, "_embed_sentences", _no_sentences_here)
        distributed = api.build_index(big_corpus, ray_dir, model=MODEL, ray="local")
    assert statuses(distributed) == statuses(local)
    changed = {o.source for o in distributed.outcomes if o.status in ("changed", "added")}
    assert changed == {"notes.md", "new.txt"}
    assert 0 < distributed.embedded_chunks == local.embedded_chunks < 5
    assert 0 < distributed.embedded_sentences == local.embedded_sentences < 5
    assert_same_index(local_dir, ray_dir)


# --------------------------------------------------------------------------- faults


class _Killer:
    """An embedder whose process kills itself in the middle of a batch (see ``_killing``)."""

    def __init__(self, marker: str, every_time: bool) -> None:
        self.inner = HashEmbedder(64)
        self.name, self.dimension = self.inner.name, self.inner.dimension
        self.max_tokens = self.inner.max_tokens
        self.marker, self.every_time = Path(marker), every_time

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        if self.every_time or not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.embed_batch(texts)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def _killing(marker: str, every_time: bool, model: str) -> Embedder:
    return _Killer(marker, every_time)


def _update_with_killer(
    corpus: Path, index_dir: Path, marker: Path, *, every_time: bool
) -> api.BuildReport:
    index = Index.load(index_dir)
    executor = RayExecutor(
        "hash:64",
        IndexSettings(model=MODEL).chunker,
        workers=1,
        retries=1,
        embedder_factory=functools.partial(_killing, str(marker), every_time),
    )
    report = index.update(corpus, executor=executor)
    index.save(index_dir)
    return report


@pytest.fixture
def pickled_by_value() -> Iterator[None]:
    """Ship this module's killer to the workers by value (no import needed there)."""
    from ray import cloudpickle

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        cloudpickle.unregister_pickle_by_value(module)


def test_killed_worker_is_retried(big_corpus: Path, tmp_path: Path, pickled_by_value: None) -> None:
    index_dir, reference = tmp_path / "index", tmp_path / "reference"
    api.build_index(big_corpus, index_dir, model=MODEL)
    (big_corpus / "new.txt").write_text("Quantum research talent exchange.\n", encoding="utf-8")
    api.build_index(big_corpus, reference, model=MODEL)
    marker = tmp_path / "killed-once"

    report = _update_with_killer(big_corpus, index_dir, marker, every_time=False)

    assert marker.exists()  # a worker really died mid-batch
    assert [o.source for o in report.outcomes if o.status == "added"] == ["new.txt"]
    assert_same_index(reference, index_dir)


def test_worker_killed_every_time_fails_cleanly_and_keeps_the_index(
    big_corpus: Path, tmp_path: Path, pickled_by_value: None
) -> None:
    index_dir = tmp_path / "index"
    api.build_index(big_corpus, index_dir, model=MODEL)
    before = snapshot(index_dir)
    shutil.copy(big_corpus / "notes.md", big_corpus / "notes-copy-edited.md")
    with (big_corpus / "notes-copy-edited.md").open("a", encoding="utf-8") as handle:
        handle.write("\nAn edit.\n")

    with pytest.raises(ClusterError) as failure:
        _update_with_killer(big_corpus, index_dir, tmp_path / "marker", every_time=True)

    message = str(failure.value)
    assert "\n" not in message and "previous index is unchanged" in message
    after = snapshot(index_dir)
    assert after[0] == before[0] and after[1] == before[1] and after[3] == before[3]


def test_unreachable_address_fails_with_one_line(corpus: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    api.build_index(corpus, index_dir, model=MODEL)
    (corpus / "new.txt").write_text("Something new to embed.\n", encoding="utf-8")
    manifest = (index_dir / "manifest.json").read_bytes()
    started = time.monotonic()
    result = run_cli(
        ["index", "--corpus", str(corpus), "--index", str(index_dir), "--ray", "ray://127.0.0.1:1"]
    )
    assert time.monotonic() - started < 60
    assert_clean_error(result, "cannot reach the Ray cluster at ray://127.0.0.1:1")
    assert (index_dir / "manifest.json").read_bytes() == manifest
    assert len(Index.load(index_dir).documents()) == 3


def test_bad_address_and_workers_are_usage_errors(corpus: Path, tmp_path: Path) -> None:
    from tpd_qa.cli import main

    with pytest.raises(SystemExit) as usage:
        main(["index", "--corpus", str(corpus), "--index", str(tmp_path / "i"), "--ray", "x::"])
    assert usage.value.code == 2
    with pytest.raises(SystemExit) as usage:
        main(["index", "--corpus", str(corpus), "--ray-workers", "0"])
    assert usage.value.code == 2


def test_work_travels_to_actors_and_back_as_json_and_bytes(tmp_path: Path) -> None:
    """A job and its prepared document cross the driver/actor boundary as JSON text plus
    float32 bytes, and come back equal: headings, OCR pages, build-report notes, chunk
    spans and vectors. A page-progress callback stays behind (it cannot travel)."""
    from tpd_qa.index.cluster import (
        _job_from_record,
        _job_record,
        _prepared_from_record,
        _prepared_record,
        _sentences_from_record,
    )
    from tpd_qa.index.executor import Job, Prepared
    from tpd_qa.ingest import OcrOptions
    from tpd_qa.records import Chunk, Document, Heading

    ocr = OcrOptions(True, tmp_path / "ocr-cache", "eng+jpn", 2, on_page=lambda d, t: None)
    job = _job_from_record(_job_record(Job(tmp_path / "スキャン.pdf", "sub/スキャン.pdf", ocr)))
    assert job == Job(
        tmp_path / "スキャン.pdf", "sub/スキャン.pdf", OcrOptions(True, tmp_path / "ocr-cache")
    )
    text = "Title\n\n量子 cooperation.\n\nPage two."
    document = Document(
        "sub/スキャン.pdf",
        "Title",
        text,
        "pdf",
        "ab" * 32,
        (0, 24),
        (Heading(0, 5, 1, "Title"),),
        (None, 61.5),
        notes=("page 3 unreadable",),
    )
    chunks = [
        Chunk(document.sha256, 0, 23, text[0:23], 1, "Title"),
        Chunk(document.sha256, 25, 34, text[25:34], 2, None),
    ]
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    # new sentence vectors travel with the first document that has the sentence, once
    first = text_key("量子 cooperation.")
    new = {first: np.ones(3, np.float32) / 3, b"x" * 16: np.zeros(3, np.float32)}
    record, data, sentence_data = _prepared_record(
        Prepared(document.source, document, chunks, vectors), new
    )
    back = _prepared_from_record(record, data)
    assert back.document == document and back.document.notes == document.notes
    assert back.chunks == chunks and back.reason == ""
    assert back.vectors is not None and np.array_equal(back.vectors, vectors)
    sentences = _sentences_from_record(record, sentence_data)
    assert list(sentences) == [first] and np.array_equal(
        sentences[first], np.ones(3, np.float32) / 3
    )
    assert list(new) == [b"x" * 16]  # taken out: no other document sends it again
    record, data, sentence_data = _prepared_record(Prepared("bad.pdf", reason="encrypted PDF"), {})
    assert _prepared_from_record(record, data) == Prepared("bad.pdf", reason="encrypted PDF")
    assert _sentences_from_record(record, sentence_data) == {}
