"""Combining ranked lists from several retrievers into one ranking."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["reciprocal_rank_fusion", "weighted_fusion", "convex_fusion", "min_max"]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], *, k: float = 60.0, weights: Sequence[float] | None = None
) -> dict[int, float]:
    """RRF: each list contributes ``weight / (k + rank)`` (rank from 1) to an id's score."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


def min_max(scores: np.ndarray) -> np.ndarray:
    """Rescale to [0, 1]; a constant vector maps to ones (or zeros if it is all zero)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    low, high = float(scores.min()), float(scores.max())
    if high - low < 1e-12:
        return np.ones_like(scores) if high > 0 else np.zeros_like(scores)
    return (scores - low) / (high - low)


def weighted_fusion(
    scored: Mapping[str, tuple[np.ndarray, np.ndarray]], weights: Mapping[str, float]
) -> dict[int, float]:
    """Convex combination of per-retriever min-max normalised scores.

    ``scored`` maps a retriever name to (scores, ids) of its candidates; an id missing
    from one retriever's candidates gets 0 from it.
    """
    fused: dict[int, float] = {}
    for name, (scores, ids) in scored.items():
        weight = weights.get(name, 0.0)
        if weight == 0.0 or len(ids) == 0:
            continue
        for item, value in zip(ids.tolist(), min_max(scores).tolist(), strict=True):
            fused[item] = fused.get(item, 0.0) + weight * value
    return fused


def convex_fusion(
    scored: Mapping[str, tuple[np.ndarray, np.ndarray]], weights: Mapping[str, float]
) -> dict[int, float]:
    """Convex combination keeping the dense score absolute: ``w_d * cos + w_s * bm25 / top``.

    The ``dense`` retriever's scores (cosine similarities) are used as they are; every other
    retriever's scores are divided by its best candidate's score, so they lie in [0, 1]
    without min-max's stretching of weak lists. An id missing from a retriever's
    candidates gets 0 from it. With weights summing to 1, a fused score near the dense
    weight times the cosine says how well the best passage matches the question at all.
    Tuned on BEIR SciFact train (see bench/tune_fusion.py): dense 0.8, keywords 0.2.
    """
    fused: dict[int, float] = {}
    for name, (scores, ids) in scored.items():
        weight = weights.get(name, 0.0)
        if weight == 0.0 or len(ids) == 0:
            continue
        values = np.asarray(scores, dtype=np.float64)
        if name != "dense":
            top = float(values.max())
            values = values / top if top > 0 else np.zeros_like(values)
        for item, value in zip(ids.tolist(), values.tolist(), strict=True):
            fused[item] = fused.get(item, 0.0) + weight * value
    return fused
