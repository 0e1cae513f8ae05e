"""Tune hybrid fusion and BM25 on SciFact TRAIN; report the chosen settings on TEST.

    .venv/bin/python bench/tune_fusion.py [--precision auto|float32|bfloat16]

Chunk vectors are cached in bench/results/cache/ (the first run embeds the corpus, a few
minutes); candidate lists are computed once per BM25 setting, and every fusion variant is
scored from them at document level (a document scores as its best chunk). Only train
qrels choose anything; test figures are printed for the chosen settings at the end.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from _common import RESULTS, SCIFACT, CachedEmbedder, write_results

from tpd_qa.embedding import make_embedder
from tpd_qa.evaluation import load_beir, score_runs
from tpd_qa.fusion import min_max
from tpd_qa.index import Index, IndexSettings, Searcher
from tpd_qa.sparse import SparseIndex, SparseSettings

DEPTH = 100

Candidates = dict[str, tuple[np.ndarray, np.ndarray]]  # qid -> (scores, chunk rows)


def ndcg10(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    """Mean nDCG@10 (fast, for grid search; the final figures come from ranx)."""
    total = 0.0
    for qid, rels in qrels.items():
        docs = ranked.get(qid, [])[:10]
        dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(docs))
        ideal = sorted(rels.values(), reverse=True)[:10]
        total += dcg / sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return total / len(qrels)


def doc_ranking(rows: np.ndarray, row_doc: list[str]) -> list[str]:
    """Documents in order of their best chunk."""
    seen: dict[str, None] = {}
    for row in rows.tolist():
        seen.setdefault(row_doc[row], None)
    return list(seen)


def fuse_rrf(dense: tuple, sparse: tuple, k: float, wd: float, ws: float) -> np.ndarray:
    scores: dict[int, float] = {}
    for (_, ids), weight in ((dense, wd), (sparse, ws)):
        for rank, row in enumerate(ids.tolist(), start=1):
            scores[row] = scores.get(row, 0.0) + weight / (k + rank)
    return _order(scores)


def fuse_convex(dense: tuple, sparse: tuple, wd: float, norm: str) -> np.ndarray:
    """wd * dense' + (1 - wd) * bm25'; norm picks how each list is rescaled."""
    scores: dict[int, float] = {}
    parts = ((dense, wd, "dense"), (sparse, 1.0 - wd, "bm25"))
    for (values, ids), weight, name in parts:
        if len(ids) == 0:
            continue
        if norm == "minmax":
            scaled = min_max(values)
        elif norm == "max":  # divide by the best score: 1 at the top, absolute zero kept
            scaled = values / max(float(values.max()), 1e-9)
        elif norm == "zscore":
            scaled = (values - values.mean()) / (values.std() + 1e-9)
        elif norm == "theoretical":  # cosine as is; bm25 by the list's best score
            scaled = values if name == "dense" else values / max(float(values.max()), 1e-9)
        else:
            raise ValueError(norm)
        for row, value in zip(ids.tolist(), np.asarray(scaled).tolist(), strict=True):
            scores[row] = scores.get(row, 0.0) + weight * value
    if norm == "zscore":  # missing from a list: its list's lowest value, not 0
        pass
    return _order(scores)


def _order(scores: dict[int, float]) -> np.ndarray:
    items = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return np.array([row for row, _ in items], dtype=np.int64)


def evaluate(
    fuser: Callable[[tuple, tuple], np.ndarray],
    dense: Candidates,
    sparse: Candidates,
    qrels: dict[str, dict[str, int]],
    row_doc: list[str],
) -> float:
    ranked = {qid: doc_ranking(fuser(dense[qid], sparse[qid]), row_doc) for qid in qrels}
    return ndcg10(ranked, qrels)


def sparse_candidates(
    searcher: Searcher, settings: SparseSettings, queries: dict[str, str]
) -> Candidates:
    texts = [searcher.state.keyword_text(row) for row in range(len(searcher.state.chunks))]
    sparse = SparseIndex.build(texts, settings)
    return {qid: sparse.search(text, DEPTH) for qid, text in queries.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"])
    args = parser.parse_args()
    train = load_beir(SCIFACT, "train")
    test = load_beir(SCIFACT, "test")
    inner = make_embedder("default", precision=args.precision)
    precision = getattr(inner, "precision", "float32")
    cache = CachedEmbedder(inner, RESULTS / "cache" / f"scifact-minilm-{precision}.npz")
    index = Index.from_documents(train.documents, settings=IndexSettings(), embedder=cache)
    queries = {**train.queries, **test.queries}
    query_vectors = cache.embed_batch(list(queries.values()))
    cache.save()
    print(f"{index.chunk_count} chunks; {cache.misses} texts embedded now", file=sys.stderr)
    searcher = index.searcher
    row_doc = [searcher.state.document_of(row).source for row in range(index.chunk_count)]
    dense = {
        qid: searcher.dense.search(vector, DEPTH)
        for qid, vector in zip(queries, query_vectors, strict=True)
    }

    report: dict[str, Any] = {"train_queries": len(train.qrels), "test_queries": len(test.qrels)}
    # 1. BM25 parameters, alone, on train.
    bm25_grid = []
    best_sparse: tuple[float, SparseSettings, Candidates] | None = None
    base = index.settings.sparse
    for method, k1, b in itertools.product(["lucene", "bm25+"], [0.9, 1.2, 1.5], [0.5, 0.75, 0.9]):
        settings = replace(base, method=method, k1=k1, b=b)
        candidates = sparse_candidates(searcher, settings, queries)
        ranked = {q: doc_ranking(candidates[q][1], row_doc) for q in train.qrels}
        score = ndcg10(ranked, train.qrels)
        bm25_grid.append({"method": method, "k1": k1, "b": b, "train_ndcg10": round(score, 4)})
        print(f"bm25 {method} k1={k1} b={b}: {score:.4f}", file=sys.stderr)
        if best_sparse is None or score > best_sparse[0] + 1e-4:
            best_sparse = (score, settings, candidates)
    assert best_sparse is not None
    report["bm25_grid"] = bm25_grid
    report["bm25_best"] = {**best_sparse[1].to_dict(), "train_ndcg10": round(best_sparse[0], 4)}
    default_sparse = sparse_candidates(searcher, base, queries)

    # 2. Fusion on train, with the default BM25 and with the best one.
    fusion_grid = []
    choices: list[tuple[float, str, dict[str, Any], Candidates]] = []
    for label, sparse in (("default-bm25", default_sparse), ("tuned-bm25", best_sparse[2])):
        variants: list[tuple[str, dict[str, Any], Callable]] = []
        for k in (5, 10, 20, 40, 60, 100):
            for ws in (0.5, 0.75, 1.0, 1.5, 2.0):
                variants.append(
                    (
                        "rrf",
                        {"rrf_k": k, "sparse_weight": ws},
                        lambda d, s, k=k, ws=ws: fuse_rrf(d, s, k, 1.0, ws),
                    )
                )
        for norm in ("minmax", "max", "theoretical", "zscore"):
            for wd in np.round(np.arange(0.1, 0.95, 0.05), 2).tolist():
                variants.append(
                    (
                        f"convex-{norm}",
                        {"dense_weight": wd},
                        lambda d, s, wd=wd, norm=norm: fuse_convex(d, s, wd, norm),
                    )
                )
        for name, params, fuser in variants:
            score = evaluate(fuser, dense, sparse, train.qrels, row_doc)
            fusion_grid.append(
                {"bm25": label, "fusion": name, **params, "train_ndcg10": round(score, 4)}
            )
            choices.append((score, f"{label} {name}", params, sparse))
        best_here = max(
            (r for r in fusion_grid if r["bm25"] == label), key=lambda r: r["train_ndcg10"]
        )
        print(f"best fusion with {label}: {best_here}", file=sys.stderr)
    report["fusion_grid"] = fusion_grid

    # 3. Test figures: single modes, the old default, and the best per family (chosen on train).
    def test_score(fuser: Callable, sparse: Candidates) -> dict[str, float]:
        run = {
            qid: {
                doc: float(DEPTH - i)
                for i, doc in enumerate(doc_ranking(fuser(dense[qid], sparse[qid]), row_doc))
            }
            for qid in test.qrels
        }
        return score_runs(test.qrels, run, ["ndcg@10", "mrr@10", "recall@100"])

    rows: dict[str, Any] = {
        "dense": test_score(lambda d, s: d[1], default_sparse),
        "bm25 (default)": test_score(lambda d, s: s[1], default_sparse),
        "bm25 (tuned)": test_score(lambda d, s: s[1], best_sparse[2]),
        "hybrid rrf k=60 (old default)": test_score(
            lambda d, s: fuse_rrf(d, s, 60, 1, 1), default_sparse
        ),
    }
    families: dict[str, tuple[float, str, dict[str, Any], Candidates]] = {}
    for choice in choices:
        family = choice[1].rsplit(" ", 1)[0] + " " + choice[1].split(" ")[-1]
        if family not in families or choice[0] > families[family][0]:
            families[family] = choice
    for family, (score, _, params, sparse) in sorted(families.items()):
        name = family.split(" ")[-1]
        if name == "rrf":
            fuser = lambda d, s, p=params: fuse_rrf(d, s, p["rrf_k"], 1.0, p["sparse_weight"])  # noqa: E731
        else:
            norm = name.split("-", 1)[1]
            fuser = lambda d, s, p=params, n=norm: fuse_convex(d, s, p["dense_weight"], n)  # noqa: E731
        rows[f"{family} {params}"] = {"train_ndcg10": round(score, 4), **test_score(fuser, sparse)}
    report["test"] = rows
    for name, row in rows.items():
        print(f"{name:<60} " + " ".join(f"{k}={v:.4f}" for k, v in row.items()))
    write_results(f"tune_fusion_{precision}", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
