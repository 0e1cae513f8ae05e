"""Retrieval modes and fusion methods: the names users may type and what they mean."""

from __future__ import annotations

from typing import Final, Literal, get_args

from tpd_qa.errors import QueryError

__all__ = [
    "BACKENDS",
    "Backend",
    "FUSIONS",
    "MODES",
    "MODE_ALIASES",
    "MODE_LABELS",
    "Fusion",
    "Mode",
    "normalise_mode",
]

#: ``hybrid`` fuses meaning (dense vectors) and exact words (BM25); the others use one.
Mode = Literal["hybrid", "dense", "bm25"]
MODES: Final[tuple[Mode, ...]] = get_args(Mode)
#: Other names accepted for a mode (the web UI's labels among them).
MODE_ALIASES: Final[dict[str, Mode]] = {
    "semantic": "dense",
    "vector": "dense",
    "keyword": "bm25",
    "sparse": "bm25",
}
#: What the web UI calls each mode.
MODE_LABELS: Final[dict[Mode, str]] = {"hybrid": "Hybrid", "dense": "Semantic", "bm25": "Keyword"}

#: How dense and keyword rankings are combined in hybrid mode.
Fusion = Literal["convex", "rrf", "weighted"]
FUSIONS: Final[tuple[Fusion, ...]] = get_args(Fusion)

#: Where an index's search data lives: ``local`` (FAISS + bm25s files in the index
#: folder, the default) or ``milvus`` (a Milvus collection; needs the ``milvus`` extra).
Backend = Literal["local", "milvus"]
BACKENDS: Final[tuple[Backend, ...]] = get_args(Backend)


def normalise_mode(mode: object) -> Mode:
    """The canonical mode for ``mode`` (any accepted name, any case); QueryError otherwise."""
    if not isinstance(mode, str):
        raise QueryError(f"unknown mode {mode!r}: use hybrid, dense or bm25")
    name = mode.strip().lower()
    for canonical in MODES:
        if name == canonical:
            return canonical
    if name in MODE_ALIASES:
        return MODE_ALIASES[name]
    raise QueryError(f"unknown mode {mode!r}: use hybrid, dense or bm25")
