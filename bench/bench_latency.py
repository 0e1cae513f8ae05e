"""Query latency (p50/p95/p99, in-process ``Searcher.search``), dense recall and memory by size.

    .venv/bin/python bench/bench_latency.py [--sizes 1000,10000,100000,1000000] [--base-docs N]

Sizes up to the SciFact chunk count (16,858) use real chunks and their real vectors;
larger sizes replicate SciFact's chunks as extra documents with synthetic vectors that
keep the real embeddings' layout (uniform random vectors would be a worst case for graph
indexes): ``--synthetic mix`` (default) gives each replica the normalised sum of its real
vector, another random real vector and Gaussian noise; ``--synthetic copies`` gives it its
real vector plus noise (cosine ~0.89), i.e. clumps of near-duplicates, a harder case.
Queries are real SciFact queries (claims; ``--questions squad``: SQuAD train questions,
which also take the second stage's evidence measures), embedded by the bundled model in
the timed call; each text is asked once, so the query cache never helps. The timed call
is the whole hybrid search (validation, query embedding, FAISS, BM25, fusion, the second
stage and passage assembly: what ``Index.search`` runs). Dense
recall@10 of the automatically chosen FAISS index is measured against exact search over
the same vectors. ``--base-docs N`` embeds only the first N SciFact abstracts as the real
base (a quicker first run on a busy machine; larger sizes then hold more replicas of each).
Writes bench/results/latency.json and latency.png (latency_copies.* with ``--synthetic
copies``).
"""

from __future__ import annotations

import argparse
import functools
import gc
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np
from _common import RESULTS, SCIFACT, CachedEmbedder, machine, percentiles, write_results
from bench_squad import SQUAD

from tpd_qa.dense import HNSW_THRESHOLD, DenseIndex
from tpd_qa.embedding import embed_queries, make_embedder
from tpd_qa.evaluation import load_beir, load_squad
from tpd_qa.index import Index, IndexState, QueryVectors, Searcher
from tpd_qa.query import Query

NOISE = 0.5


def _rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def synthetic(
    vectors: np.ndarray, pool: np.ndarray, rng: np.random.Generator, mix: bool
) -> np.ndarray:
    """Synthetic neighbours of real vectors: noisy copies, or mixed with a random other one."""
    noisy = vectors + rng.normal(0, NOISE / np.sqrt(vectors.shape[1]), vectors.shape)
    if mix:
        noisy = noisy + pool[rng.integers(0, len(pool), len(vectors))]
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def scaled_searcher(
    base: Searcher, size: int, embedder: Any, mix: bool = True, sentences: bool = True
) -> Searcher:
    """A searcher over ``size`` chunks: real ones first, then noisy replicas (see module doc);
    ``sentences`` False leaves out the sentence vectors (and the second stage's feature)."""
    rng = np.random.default_rng(size)
    real = base.state
    docs, chunks, parts, sources = [], [], [], []
    rows = 0
    copy = 0
    while rows < size:
        for stored in real.docs:
            if rows >= size:
                break
            take = min(stored.chunks, size - rows)
            document = stored.document
            if copy:
                document = replace(document, source=f"{document.source}~{copy}")
            docs.append(replace(stored, document=document, first_row=rows, chunks=take))
            first = stored.first_row
            chunks.extend(real.chunks[first : first + take])
            sources.append(np.arange(first, first + take))
            vectors = real.vectors[first : first + take]
            if copy:
                vectors = synthetic(vectors, real.vectors, rng, mix)
            parts.append(vectors.astype(np.float32))
            rows += take
        copy += 1
    vectors = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    # replicas repeat the real chunks' texts, so the real store holds their sentences too
    state = IndexState(
        docs=docs,
        chunks=chunks,
        vectors=vectors,
        dimension=vectors.shape[1],
        sentences=(
            real.sentences.taken(np.concatenate(sources))
            if sentences and real.sentences is not None
            else None
        ),
    )
    state.rebuild_search(base.sparse.settings)
    return Searcher(state, base.settings, QueryVectors(functools.partial(embed_queries, embedder)))


def dense_recall(searcher: Searcher, queries: np.ndarray, k: int = 10) -> float:
    """Recall@k of the searcher's FAISS search against exact inner-product search."""
    if searcher.dense.kind == "flat":
        return 1.0
    exact = DenseIndex.build(searcher.state.vectors, kind="flat")
    hits = 0
    for vector in queries:
        truth = set(exact.search(vector, k)[1].tolist())
        hits += len(truth & set(searcher.dense.search(vector, k)[1].tolist()))
    return hits / (k * len(queries))


def component_bytes(searcher: Searcher) -> dict[str, int]:
    return {
        "vectors": searcher.state.vectors.nbytes,
        "faiss": searcher.dense.memory_bytes(),
        "bm25": searcher.sparse.memory_bytes(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=300, help="timed queries per size")
    parser.add_argument("--synthetic", choices=["mix", "copies"], default="mix")
    parser.add_argument("--base-docs", type=int, help="real base: the first N abstracts only")
    parser.add_argument(
        "--questions",
        choices=["scifact", "squad"],
        default="scifact",
        help="timed texts: SciFact claims, or SQuAD train questions (which take the "
        "second stage's evidence measures)",
    )
    parser.add_argument(
        "--sentences",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="search with the sentence vectors (the default; --no-sentences: without)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    dataset = load_beir(SCIFACT, "train")
    test = load_beir(SCIFACT, "test")
    real = make_embedder("default")
    cache = CachedEmbedder(real, RESULTS / "cache" / f"scifact-minilm-{real.precision}.npz")
    base = Index.from_documents(dataset.documents[: args.base_docs], embedder=cache)
    cache.save()
    texts = list({**test.queries, **dataset.queries}.values())
    recall_queries = cache.embed_batch(texts[:200])
    if args.questions == "squad":
        texts = list(dict.fromkeys(q.question for q in load_squad(SQUAD).questions))
    print(f"base: {base.chunk_count} real chunks ({cache.misses} embedded now)", file=sys.stderr)
    store = base.state.sentences
    if store is not None:  # replicas share the real sentences: state the real index's cost
        stored = store.vectors.nbytes + store.keys.nbytes + store.offsets.nbytes
        per_chunk = (stored + store.index.nbytes) / base.chunk_count
        print(
            f"sentence vectors: {len(store)} for {base.chunk_count} chunks, "
            f"{per_chunk:.0f} B/chunk in a real index",
            file=sys.stderr,
        )
    embed_queries(real, ["a first question opens the question engine untimed"])
    precisions = f"passages {real.precision}, questions {getattr(real, 'query_precision', '?')}"
    print(f"precision: {precisions}", file=sys.stderr)

    results: list[dict[str, Any]] = []
    used = 0
    for size in sizes:
        gc.collect()
        before = _rss_mib()
        started = time.perf_counter()
        searcher = scaled_searcher(
            base.searcher, size, real, mix=args.synthetic == "mix", sentences=args.sentences
        )
        build_s = time.perf_counter() - started
        grown = _rss_mib() - before
        chunk_count = len(searcher.state.chunks)
        row: dict[str, Any] = {
            "chunks": chunk_count,
            "vectors": "real" if size <= base.chunk_count else f"real + synthetic {args.synthetic}",
            "dense_index": searcher.dense.kind,
            "build_s": round(build_s, 1),
            "rss_growth_mib": round(grown, 1),
        }
        parts = component_bytes(searcher)
        row["bytes_per_chunk"] = {k: round(v / chunk_count, 1) for k, v in parts.items()}
        row["bytes_per_chunk"]["rss"] = round(grown * 2**20 / chunk_count, 1)
        row["dense_recall@10"] = round(dense_recall(searcher, recall_queries), 4)
        for mode in ("hybrid", "dense", "bm25"):
            latencies = []
            count = args.queries if mode == "hybrid" else args.queries // 3
            for text in texts[used : used + count]:
                started = time.perf_counter()
                searcher.search(Query.parse(text, 5, mode))
                latencies.append(time.perf_counter() - started)
            used = (used + count) % (len(texts) - args.queries)
            row[mode] = percentiles(latencies)
        print(
            f"{size:>8} chunks [{row['dense_index']}]: hybrid p50 {row['hybrid']['p50_ms']} ms "
            f"p99 {row['hybrid']['p99_ms']} ms; recall@10 {row['dense_recall@10']}; "
            f"{row['bytes_per_chunk']}",
            file=sys.stderr,
        )
        results.append(row)
        del searcher
    name = "latency" if args.synthetic == "mix" else f"latency_{args.synthetic}"
    name += "_squad" if args.questions == "squad" else ""
    write_results(
        name,
        {
            "hnsw_threshold": HNSW_THRESHOLD,
            "synthetic": args.synthetic,
            "noise": NOISE,
            "sizes": results,
        },
    )
    _plot(results, name)
    print(f"\nmachine: {machine()['cpu']}, {machine()['cores']} cores")
    print(
        f"{'chunks':>9} {'index':>6} {'p50':>7} {'p95':>7} {'p99':>7} {'recall@10':>9} "
        f"{'B/chunk':>8}"
    )
    for row in results:
        hybrid = row["hybrid"]
        memory = sum(v for k, v in row["bytes_per_chunk"].items() if k != "rss")
        print(
            f"{row['chunks']:>9} {row['dense_index']:>6} {hybrid['p50_ms']:>7.1f} "
            f"{hybrid['p95_ms']:>7.1f} {hybrid['p99_ms']:>7.1f} {row['dense_recall@10']:>9.3f} "
            f"{memory:>8.0f}"
        )
    return 0


def _plot(results: list[dict[str, Any]], name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.8))
    sizes = [r["chunks"] for r in results]
    for key, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^:")):
        axis.plot(sizes, [r["hybrid"][key] for r in results], style, label=f"hybrid {key[:3]}")
    axis.plot(sizes, [r["dense"]["p50_ms"] for r in results], "o-", alpha=0.5, label="dense p50")
    axis.plot(sizes, [r["bm25"]["p50_ms"] for r in results], "o-", alpha=0.5, label="bm25 p50")
    axis.set_xscale("log")
    axis.set_xlabel("chunks in the index")
    axis.set_ylabel("ms per query (in-process)")
    axis.set_title("Query latency vs corpus size")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(RESULTS / f"{name}.png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
