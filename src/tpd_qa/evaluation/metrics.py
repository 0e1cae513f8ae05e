"""Judging and scoring: which passage answers, per-document aggregation, ranx metrics, tables."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from tpd_qa.evaluation.datasets import QaItem

__all__ = [
    "METRICS",
    "NO_RESULT",
    "PASSAGE_DEPTH",
    "aggregate_documents",
    "format_table",
    "passage_matches",
    "percentile",
    "qa_judgement",
    "score_runs",
]

METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "hit@1", "hit@5", "hit@10")
PASSAGE_DEPTH = 100  # passages fetched per BEIR query before aggregating to documents
NO_RESULT = "\x00none"  # ranx needs every judged query in the run


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def passage_matches(passage_source: str, passage_text: str, page: int | None, item: QaItem) -> bool:
    """Whether a passage answers ``item``: same source (and page) and contains the evidence."""
    if passage_source != item.source:
        return False
    if item.page is not None and page != item.page:
        return False
    return _squash(item.evidence) in _squash(passage_text)


def qa_judgement(
    items: Sequence[QaItem], results: Mapping[str, Sequence[tuple[str, str, int | None]]]
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    """Qrels and run for QA results (per item id: ranked (source, text, page) passages).

    Each question has one relevant target; the first passage that matches takes its id,
    so nDCG, MRR and recall all measure the rank of the first right passage.
    """
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for item in items:
        qrels[item.id] = {"answer": 1}
        ranked: dict[str, float] = {}
        found = False
        passages = results.get(item.id, ())
        for rank, (source, text, page) in enumerate(passages, start=1):
            hit = not found and passage_matches(source, text, page, item)
            found = found or hit
            ranked["answer" if hit else f"r{rank}"] = float(len(passages) - rank + 1)
        run[item.id] = ranked or {NO_RESULT: 0.0}
    return qrels, run


def aggregate_documents(
    passages: Sequence[tuple[str, float]], depth: int = PASSAGE_DEPTH
) -> dict[str, float]:
    """Document scores from ranked (source, score) passages: each document's best passage.

    The scores returned keep the passage order (rank-based), so ties cannot reorder them.
    """
    ranked: dict[str, float] = {}
    for source, _score in passages:
        if source not in ranked:
            ranked[source] = float(depth - len(ranked))
    return ranked


def score_runs(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str] = METRICS,
    *,
    per_query: bool = False,
) -> dict[str, Any]:
    """Mean metrics (with ranx) of ``run`` against ``qrels``; ``hit@k`` is ranx's hit_rate@k.

    With ``per_query`` the values are lists in the order of ``qrels``.
    """
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    names = [_ranx_name(metric) for metric in metrics]
    queries = list(qrels)
    full_run = {qid: dict(run.get(qid) or {NO_RESULT: 0.0}) for qid in queries}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ranx_evaluate(
            Qrels({qid: dict(qrels[qid]) for qid in queries}),
            Run(full_run),
            names,
            return_mean=not per_query,
            make_comparable=True,
        )
    if len(names) == 1:
        result = {names[0]: result}
    out: dict[str, Any] = {}
    for metric, name in zip(metrics, names, strict=True):
        value = result[name]
        out[metric] = [float(v) for v in value] if per_query else float(value)
    return out


def _ranx_name(metric: str) -> str:
    if metric.startswith("hit@"):
        return "hit_rate@" + metric.split("@", 1)[1]
    return metric


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def _cell(metric: str, value: float) -> str:
    """A table cell: character counts whole, every other figure to four places."""
    return f"{value:>10.0f}" if metric.startswith("chars@") else f"{value:>10.4f}"


def format_table(
    results: Mapping[str, Mapping[str, float]], metrics: Sequence[str] = METRICS
) -> str:
    """A plain-text table: one row per system or mode, one column per metric."""
    names = list(results)
    width = max([len("mode"), *(len(n) for n in names)])
    header = "  ".join([f"{'mode':<{width}}", *(f"{m:>10}" for m in metrics)])
    lines = [header, "-" * len(header)]
    for name in names:
        row = results[name]
        cells = [_cell(m, row[m]) if m in row else f"{'-':>10}" for m in metrics]
        lines.append("  ".join([f"{name:<{width}}", *cells]))
    return "\n".join(lines)
