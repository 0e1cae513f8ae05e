"""HNSW efSearch against recall and search time, on bench_latency.py's scaled collections.

    PYTHONPATH=src .venv/bin/python bench/bench_ef_search.py [--sizes 100000] [--ef 200,400,800]

For each size and both synthetic layouts (``mix`` and ``copies``, see bench_latency.py)
one HNSW graph is built; then, in the same process and on the same graph, each efSearch
value is tried in turn: dense recall@10 against exact search (200 SciFact queries) and the
median time of a 100-candidate graph search with exact re-ranking (400 other queries,
twice), which is what a hybrid question asks of it. What ``tpd_qa.dense.ef_search`` picks
for each size is printed beside.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import RESULTS, SCIFACT, CachedEmbedder
from bench_latency import scaled_searcher

import tpd_qa.dense as dense
from tpd_qa.embedding import make_embedder
from tpd_qa.evaluation import load_beir
from tpd_qa.index import Index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--ef", default="200,300,400,800")
    args = parser.parse_args()
    train, test = load_beir(SCIFACT, "train"), load_beir(SCIFACT, "test")
    real = make_embedder("default")
    cache = CachedEmbedder(real, RESULTS / "cache" / f"scifact-minilm-{real.precision}.npz")
    base = Index.from_documents(train.documents, embedder=cache)
    queries = cache.embed_batch(list({**test.queries, **train.queries}.values())[:600])
    chosen = dense.ef_search
    for size in (int(s) for s in args.sizes.split(",")):
        for layout in ("mix", "copies"):
            searcher = scaled_searcher(base.searcher, size, real, mix=layout == "mix")
            exact = dense.DenseIndex.build(searcher.state.vectors, kind="flat")
            truth = [set(exact.search(q, 10)[1].tolist()) for q in queries[:200]]
            for ef in (int(e) for e in args.ef.split(",")):
                dense.ef_search = lambda _size, ef=ef: ef  # type: ignore[misc]
                found = sum(
                    len(t & set(searcher.dense.search(q, 10)[1].tolist()))
                    for t, q in zip(truth, queries[:200], strict=True)
                )
                times = []
                for q in [*queries[200:600], *queries[200:600]]:
                    started = time.perf_counter()
                    searcher.dense.search(q, 100)
                    times.append(time.perf_counter() - started)
                print(
                    f"{size:>9} {layout:<6} efSearch {ef:>4} recall@10 {found / 2000:.4f} "
                    f"search p50 {1000 * float(np.median(times)):.2f} ms"
                    f"{'  (default)' if ef == chosen(size) else ''}",
                    flush=True,
                )
            dense.ef_search = chosen
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
