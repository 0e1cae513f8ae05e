"""Vector search over unit-length embeddings with FAISS (inner product = cosine).

Small collections use exact search; above ``hnsw_threshold`` vectors an HNSW graph
over 8-bit scalar-quantised vectors keeps latency flat at a fraction of the memory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tpd_qa.errors import IndexCorruptError

__all__ = ["DenseIndex", "HNSW_THRESHOLD"]

log = logging.getLogger(__name__)

HNSW_THRESHOLD = 50_000
_HNSW_M = 32
_HNSW_EF_CONSTRUCTION = 80
_HNSW_EF_SEARCH = 96


def _faiss():  # imported lazily: FAISS loads OpenMP and BLAS
    import faiss

    return faiss


class DenseIndex:
    """A FAISS index over ``n`` vectors whose ids are row numbers 0..n-1."""

    def __init__(self, index: object, kind: str) -> None:
        self._index = index
        self.kind = kind

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
            index.hnsw.efSearch = _HNSW_EF_SEARCH
            if len(vectors):
                index.train(vectors)
        else:
            raise ValueError(f"unknown dense index kind {kind!r}")
        if len(vectors):
            index.add(vectors)
        log.debug("built %s index over %d vectors", kind, len(vectors))
        return cls(index, kind)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) for one query vector; ``allowed`` restricts to those ids."""
        faiss = _faiss()
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        k = min(k, self.size if allowed is None else len(allowed))
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            if self.kind == "hnsw":
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(_HNSW_EF_SEARCH, k))
            else:
                params = faiss.SearchParameters(sel=selector)
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(_HNSW_EF_SEARCH, k))
        scores, ids = self._index.search(query, k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep].astype(np.int64)

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (FAISS's own binary format, no pickle)."""
        _faiss().write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        """Read an index written by ``save``."""
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path))
        except Exception as exc:  # FAISS raises RuntimeError with C++ text
            raise IndexCorruptError(f"cannot read vector index {path.name}: {exc}") from exc
        kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
        if kind == "hnsw":
            index.hnsw.efSearch = _HNSW_EF_SEARCH
        return cls(index, kind)
