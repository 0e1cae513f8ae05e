"""Vector search over unit-length embeddings with FAISS (inner product = cosine).

Small collections use exact search; above ``hnsw_threshold`` vectors an HNSW graph
over 8-bit scalar-quantised vectors keeps latency flat at a fraction of the memory.
The graph's quantised scores only pick candidates: it is asked for more of them than
wanted, and they are re-ranked exactly against the float32 vectors the index keeps
anyway, so the scores returned are always exact cosines.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from tpd_qa.errors import IndexCorruptError

__all__ = ["DenseIndex", "HNSW_THRESHOLD", "ef_search"]

log = logging.getLogger(__name__)

HNSW_THRESHOLD = 50_000
_HNSW_M = 32
# efConstruction 120 (80 before): dense recall@10 at 1M chunks ~0.97 -> ~0.98 with the
# re-ranking below, for ~30% more build time (bench/README.md, "Query latency, recall
# and memory"); it shapes new graphs only, older dense.faiss files load as they are
_HNSW_EF_CONSTRUCTION = 120
# efSearch grows with the graph (its paths lengthen with log n): 400 up to 100k chunks,
# 800 from 1M, log-linear between. Measured recall@10 in bench_latency's two layouts:
# 100k 0.999 / 0.998 at 400 (0.9995 / 0.999 at 800, 1.7 ms a query more); 1M 0.984 /
# 0.975 at 800 (400: 0.979 / 0.964).
_HNSW_EF_SEARCH = (400, 800)
_HNSW_EF_SIZES = (100_000, 1_000_000)
# the graph is asked for max(this, 2k) candidates, re-ranked exactly against float32
_HNSW_CANDIDATES = 100
# a document filter allowing at most this many rows is scored exactly, without the graph
# (~0.5 us a row at 1M chunks): a selective filter starves the graph's traversal
_EXACT_ALLOWED = 10_000


def ef_search(size: int) -> int:
    """The HNSW efSearch for a graph of ``size`` vectors (see ``_HNSW_EF_SEARCH``)."""
    (low, high), (small, large) = _HNSW_EF_SEARCH, _HNSW_EF_SIZES
    share = math.log(max(size, small) / small) / math.log(large / small)
    return round(low + (high - low) * min(share, 1.0))


def _faiss() -> Any:  # imported lazily: FAISS loads OpenMP and BLAS (untyped)
    import faiss

    return faiss


class DenseIndex:
    """A FAISS index over ``n`` vectors whose ids are row numbers 0..n-1.

    ``vectors`` is the float32 matrix the index was built from (shared, not copied); the
    HNSW kind needs it to re-rank candidates exactly.
    """

    def __init__(self, index: Any, kind: str, vectors: np.ndarray | None = None) -> None:
        if kind == "hnsw" and vectors is None:
            raise ValueError("an HNSW dense index needs its float32 vectors")
        self._index: Any = index  # a FAISS index (FAISS has no type information)
        self.kind = kind
        self._vectors = vectors

    @classmethod
    def build(
        cls, vectors: np.ndarray, *, kind: str = "auto", hnsw_threshold: int = HNSW_THRESHOLD
    ) -> DenseIndex:
        """Index ``vectors`` (float32, shape (n, d)); ``kind`` is auto, flat or hnsw."""
        faiss = _faiss()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError("vectors must be a 2-D array")
        dimension = vectors.shape[1]
        if kind == "auto":
            kind = "hnsw" if len(vectors) >= hnsw_threshold else "flat"
        if kind == "flat":
            index = faiss.IndexFlatIP(dimension)
        elif kind == "hnsw":
            index = faiss.IndexHNSWSQ(
                dimension, faiss.ScalarQuantizer.QT_8bit, _HNSW_M, faiss.METRIC_INNER_PRODUCT
            )
            index.hnsw.efConstruction = _HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = ef_search(len(vectors))
            if len(vectors):
                index.train(vectors)
        else:
            raise ValueError(f"unknown dense index kind {kind!r}")
        if len(vectors):
            index.add(vectors)
        log.debug("built %s index over %d vectors", kind, len(vectors))
        return cls(index, kind, vectors)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def memory_bytes(self) -> int:
        """Bytes the FAISS structure takes (a flat index holds its own float32 copy)."""
        if self.kind == "flat":
            return self.size * self.dimension * 4
        return len(_faiss().serialize_index(self._index))

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) for one query vector; ``allowed`` restricts to those ids."""
        faiss = _faiss()
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        k = min(k, self.size if allowed is None else len(allowed))
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        if self.kind == "hnsw":
            return self._search_hnsw(query, k, allowed)
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
        scores, ids = self._index.search(query, k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep].astype(np.int64)

    def _search_hnsw(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates from the graph, re-ranked exactly; small filters are scored exactly."""
        if allowed is not None and len(allowed) <= max(_EXACT_ALLOWED, k):
            return self._exact(query[0], np.unique(np.asarray(allowed, dtype=np.int64)), k)
        faiss = _faiss()
        fetch = max(_HNSW_CANDIDATES, 2 * k)
        params = faiss.SearchParametersHNSW(efSearch=max(ef_search(self.size), fetch))
        if allowed is not None:
            # only allowed nodes become results: search wider as the filter narrows
            widen = min(np.sqrt(self.size / len(allowed)), 2.0)
            params.efSearch = int(params.efSearch * widen)
            params.sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        _, ids = self._index.search(query, fetch, params=params)
        candidates = ids[0][ids[0] >= 0].astype(np.int64)
        return self._exact(query[0], candidates, k)

    def _exact(self, query: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` of ``rows`` by exact inner product, best first."""
        assert self._vectors is not None
        scores = self._vectors[rows] @ query
        if len(rows) > k:
            top = np.argpartition(-scores, k - 1)[:k]
            rows, scores = rows[top], scores[top]
        order = np.lexsort((rows, -scores))  # ties: lower row first
        return scores[order].astype(np.float32), rows[order]

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (FAISS's own binary format, no pickle).

        The float32 vectors are not part of it: the caller stores them and passes them
        back to ``load``.
        """
        _faiss().write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, vectors: np.ndarray) -> DenseIndex:
        """Read an index written by ``save``; ``vectors`` are the float32 vectors it indexes."""
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path))
        except Exception as exc:  # FAISS raises RuntimeError with C++ text
            raise IndexCorruptError(f"cannot read vector index {path.name}: {exc}") from exc
        kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (index.ntotal, index.d):
            raise IndexCorruptError(
                f"vector index {path.name} holds {index.ntotal} vectors of dimension {index.d}, "
                f"the vector file {vectors.shape}",
                remedy="rebuild_full",
            )
        if kind == "hnsw":
            index.hnsw.efSearch = ef_search(index.ntotal)
        return cls(index, kind, vectors)
