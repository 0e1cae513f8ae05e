"""Running an index over a dataset: BEIR document runs and QA passage runs, per mode."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from tpd_qa.evaluation.datasets import BeirDataset, QaItem
from tpd_qa.evaluation.metrics import (
    METRICS,
    PASSAGE_DEPTH,
    aggregate_documents,
    passage_matches,
    percentile,
    qa_judgement,
    score_runs,
)
from tpd_qa.records import Passage

if TYPE_CHECKING:
    from tpd_qa.index import Index

__all__ = ["beir_run", "evaluate_beir", "evaluate_qa", "qa_results"]


def beir_run(
    index: Index,
    queries: Mapping[str, str],
    mode: str,
    *,
    depth: int = PASSAGE_DEPTH,
    on_query: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Document run for BEIR queries in ``mode``, and the per-query latency in seconds."""
    run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    for number, (qid, text) in enumerate(queries.items(), start=1):
        started = time.perf_counter()
        passages = index.search(text, depth, mode=mode)
        latencies.append(time.perf_counter() - started)
        run[qid] = aggregate_documents([(p.source, p.score) for p in passages], depth)
        if on_query:
            on_query(number, len(queries))
    return run, latencies


def evaluate_beir(
    index: Index,
    dataset: BeirDataset,
    modes: Sequence[str] = ("bm25", "dense", "hybrid"),
    metrics: Sequence[str] = METRICS,
) -> dict[str, dict[str, float]]:
    """Metrics per mode for a BEIR dataset already indexed in ``index``."""
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        run, latencies = beir_run(index, dataset.queries, mode)
        results[mode] = score_runs(dataset.qrels, run, metrics)
        results[mode]["query_ms_p50"] = percentile(latencies, 50) * 1000
    return results


def qa_results(
    index: Index, items: Sequence[QaItem], mode: str, k: int = 10
) -> dict[str, list[Passage]]:
    """The top ``k`` passages for each QA item in ``mode``."""
    return {item.id: index.search(item.question, k, mode=mode) for item in items}


def evaluate_qa(
    index: Index,
    items: Sequence[QaItem],
    modes: Sequence[str] = ("bm25", "dense", "hybrid"),
    metrics: Sequence[str] = METRICS,
    *,
    k: int = 10,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int | None]]]:
    """Metrics per mode for a QA set, and per mode the rank of the first right passage."""
    results: dict[str, dict[str, float]] = {}
    ranks: dict[str, dict[str, int | None]] = {}
    for mode in modes:
        found = qa_results(index, items, mode, k)
        triples = {qid: [(p.source, p.text, p.page) for p in ps] for qid, ps in found.items()}
        qrels, run = qa_judgement(items, triples)
        results[mode] = score_runs(qrels, run, metrics)
        ranks[mode] = {
            item.id: next(
                (
                    r
                    for r, (s, t, p) in enumerate(triples[item.id], 1)
                    if passage_matches(s, t, p, item)
                ),
                None,
            )
            for item in items
        }
    return results, ranks
