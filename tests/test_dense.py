"""Tests of tpd_qa.dense: the HNSW kind re-ranks its candidates exactly.

The graph over 8-bit quantised vectors only proposes candidates; the answer is the true
top k among them by float32 inner product. On a moderate clustered set that must be
exactly what exact (flat) search returns, with or without a document filter, and after
a save/load round trip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from builders import build_test_index
from tpd_qa import dense as dense_module
from tpd_qa.dense import DenseIndex
from tpd_qa.embedding import HashEmbedder
from tpd_qa.errors import IndexCorruptError
from tpd_qa.index import Index, read_manifest

DIMENSION = 48
KS = (1, 10, 50, 100)  # Index.search asks the dense index for 100 candidates


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    """3,000 unit vectors in 30 clusters, and 25 queries near cluster centres."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(30, DIMENSION))
    labels = rng.integers(0, len(centres), 3000)
    vectors = unit(centres[labels] + rng.normal(scale=0.6, size=(3000, DIMENSION)))
    queries = unit(centres[rng.integers(0, 30, 25)] + rng.normal(scale=0.6, size=(25, DIMENSION)))
    return vectors, queries


@pytest.fixture(scope="module")
def indexes(clustered: tuple[np.ndarray, np.ndarray]) -> tuple[DenseIndex, DenseIndex]:
    """HNSW and flat indexes of the same vectors; the graph built on one thread (repeatable)."""
    import faiss

    vectors, _ = clustered
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        hnsw = DenseIndex.build(vectors, kind="hnsw")
    finally:
        faiss.omp_set_num_threads(threads)
    return hnsw, DenseIndex.build(vectors, kind="flat")


def assert_same(
    got: tuple[np.ndarray, np.ndarray],
    want: tuple[np.ndarray, np.ndarray],
    vectors: np.ndarray,
    query: np.ndarray,
) -> None:
    """``got`` is flat search's top k: the same rows in the same order, but for float32 ties.

    Position by position the scores must be flat's, and each the exact cosine of the row
    returned; rows whose scores tie in float32 (summation order, ~1e-7) may trade places.
    """
    scores, ids = got
    assert ids.dtype == np.int64 and len(set(ids.tolist())) == len(ids) == len(want[1])
    np.testing.assert_allclose(scores, vectors[ids] @ query, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scores, want[0], rtol=0, atol=1e-6)
    assert np.all(np.diff(scores) <= 0)


def test_auto_kind_follows_threshold(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, _ = clustered
    assert DenseIndex.build(vectors, hnsw_threshold=len(vectors)).kind == "hnsw"
    assert DenseIndex.build(vectors, hnsw_threshold=len(vectors) + 1).kind == "flat"


@pytest.mark.parametrize("k", KS)
def test_hnsw_returns_exact_top_k(
    indexes: tuple[DenseIndex, DenseIndex], clustered: tuple[np.ndarray, np.ndarray], k: int
) -> None:
    hnsw, flat = indexes
    vectors, queries = clustered
    for query in queries:
        assert_same(hnsw.search(query, k), flat.search(query, k), vectors, query)


@pytest.mark.parametrize(
    ("through_graph", "k"),
    [(False, k) for k in KS] + [(True, k) for k in KS[:3]],
    ids=[f"exact-filter-{k}" for k in KS] + [f"graph-filter-{k}" for k in KS[:3]],
)
def test_hnsw_with_allowed_rows_matches_flat(
    indexes: tuple[DenseIndex, DenseIndex],
    clustered: tuple[np.ndarray, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    through_graph: bool,
    k: int,
) -> None:
    """Small filters are scored exactly; larger ones go through the graph's selector.

    The graph path is approximate (a selector only hides rows from the results), so it
    is held to exactness only down to 50 of 1,200 allowed rows.
    """
    if through_graph:
        monkeypatch.setattr(dense_module, "_EXACT_ALLOWED", 0)
    hnsw, flat = indexes
    vectors, queries = clustered
    rng = np.random.default_rng(k)
    allowed = np.sort(rng.choice(len(vectors), 1200, replace=False)).astype(np.int64)
    for query in queries:
        got = hnsw.search(query, k, allowed)
        assert_same(got, flat.search(query, k, allowed), vectors, query)
        assert set(got[1].tolist()) <= set(allowed.tolist())


def test_hnsw_with_tiny_filter_finds_every_allowed_row(
    indexes: tuple[DenseIndex, DenseIndex], clustered: tuple[np.ndarray, np.ndarray]
) -> None:
    hnsw, flat = indexes
    vectors, queries = clustered
    allowed = np.array([2999, 5, 1234], dtype=np.int64)
    for query in queries[:5]:
        got = hnsw.search(query, 10, allowed)
        assert sorted(got[1].tolist()) == [5, 1234, 2999]
        assert_same(got, flat.search(query, 10, allowed), vectors, query)


def test_hnsw_save_load_round_trip(
    indexes: tuple[DenseIndex, DenseIndex],
    clustered: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    hnsw, flat = indexes
    vectors, queries = clustered
    path = tmp_path / "dense.faiss"
    hnsw.save(path)
    loaded = DenseIndex.load(path, vectors.copy())
    assert (loaded.kind, loaded.size, loaded.dimension) == ("hnsw", len(vectors), DIMENSION)
    allowed = np.arange(100, 2100, dtype=np.int64)
    for query in queries:
        for k in (10, 100):
            assert_same(loaded.search(query, k), flat.search(query, k), vectors, query)
            assert_same(
                loaded.search(query, k, allowed), flat.search(query, k, allowed), vectors, query
            )


@pytest.mark.parametrize("shape", [(2999, DIMENSION), (3000, DIMENSION - 1)])
def test_hnsw_load_rejects_other_vectors(
    indexes: tuple[DenseIndex, DenseIndex], tmp_path: Path, shape: tuple[int, int]
) -> None:
    hnsw, _ = indexes
    path = tmp_path / "dense.faiss"
    hnsw.save(path)
    with pytest.raises(IndexCorruptError) as damaged:
        DenseIndex.load(path, np.zeros(shape, dtype=np.float32))
    assert damaged.value.remedy == "rebuild_full"


def test_hnsw_needs_its_vectors(indexes: tuple[DenseIndex, DenseIndex]) -> None:
    hnsw, _ = indexes
    with pytest.raises(ValueError, match="float32 vectors"):
        DenseIndex(hnsw._index, "hnsw")


def test_index_with_hnsw_round_trips(
    corpus: Path, tmp_path: Path, fake_embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Index.save writes dense.faiss for the HNSW kind and Index.load hands it the vectors."""
    flat, _ = build_test_index(corpus, embedder=fake_embedder)
    build = DenseIndex.build.__func__  # type: ignore[attr-defined]

    def always_hnsw(cls: type[DenseIndex], vectors: np.ndarray, **kwargs: object) -> DenseIndex:
        return build(cls, vectors, kind="hnsw")

    monkeypatch.setattr(DenseIndex, "build", classmethod(always_hnsw))
    index, _ = build_test_index(corpus, embedder=fake_embedder)
    assert index.state.dense is not None and index.state.dense.kind == "hnsw"
    directory = tmp_path / "index"
    index.save(directory)
    monkeypatch.undo()
    manifest = read_manifest(directory)
    assert manifest["dense"]["kind"] == "hnsw"
    assert (directory / manifest["generation"] / "dense.faiss").is_file()
    loaded = Index.load(directory, embedder=fake_embedder)
    assert loaded.state.dense is not None and loaded.state.dense.kind == "hnsw"
    source = "notes.md"
    for question in ("Which facility will help commercialize fusion?", "lunar surface"):
        for sources in (None, [source]):
            want = [p.to_dict() for p in flat.search(question, 5, mode="dense", sources=sources)]
            got = [p.to_dict() for p in loaded.search(question, 5, mode="dense", sources=sources)]
            assert got == want


def test_ef_search_grows_with_the_graph() -> None:
    """400 up to 100k vectors (recall@10 0.998 there), 800 from 1M, rising between."""
    from tpd_qa.dense import ef_search

    assert ef_search(0) == ef_search(50_000) == ef_search(100_000) == 400
    assert ef_search(1_000_000) == ef_search(10_000_000) == 800
    middle = [ef_search(n) for n in (200_000, 316_228, 500_000, 900_000)]
    assert middle == sorted(middle) and middle[0] > 400 and middle[-1] < 800
    assert ef_search(316_228) == 600  # halfway in log n
