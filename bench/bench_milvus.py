"""The Milvus backend against the default (FAISS + bm25s): SciFact nDCG@10 and query latency.

    PYTHONPATH=src .venv/bin/python bench/bench_milvus.py [--sizes 10000,100000] [--queries 200]

Quality: SciFact test, every mode, the same chunks and vectors (bundled MiniLM, cached
in bench/results/cache) searched by each backend; tpd_qa's own fusion, filters and
overlap removal on top of both. Latency: the whole ``Searcher.search`` of a hybrid
query (both retrievers, fusion, passages) with the query vector precomputed, so the
figure is retrieval only; sizes beyond SciFact's ~17k chunks replicate its chunks with
synthetic vectors (bench_latency.py's ``mix``). Milvus runs as Milvus Lite in-process
server on a local file (``--uri`` to point at a real Milvus instead). Writes
bench/results/milvus.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, SCIFACT, CachedEmbedder, machine, percentiles, write_results
from bench_latency import scaled_searcher

from tpd_qa.embedding import make_embedder
from tpd_qa.evaluation import evaluate_beir, load_beir
from tpd_qa.index import Index, MilvusStore, Searcher, Snapshot
from tpd_qa.query import Query


def milvus_searcher(base: Searcher, settings: Any, model: str, folder: Path, uri: str) -> Searcher:
    """``base``'s state written to Milvus and searched there (fusion etc. unchanged)."""
    store = MilvusStore(folder, uri)
    started = time.perf_counter()
    store.save(Snapshot(settings, model, base.state))
    print(f"  written to Milvus in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    state = store.load(verify=False).state
    return Searcher(state, base.settings, base.query_vector)


def timed_alternating(
    searchers: dict[str, Searcher], texts: list[str], modes: tuple[str, ...]
) -> dict[str, dict[str, dict[str, float]]]:
    """Latency per backend and mode, the backends taking turns query by query (so a change
    in the machine's load falls on both alike)."""
    for searcher in searchers.values():
        for text in texts[:5]:  # warm up
            for mode in modes:
                searcher.search(Query.parse(text, 5, mode))
    seconds: dict[str, dict[str, list[float]]] = {
        name: {mode: [] for mode in modes} for name in searchers
    }
    for text in texts:
        for mode in modes:
            for name, searcher in searchers.items():
                started = time.perf_counter()
                searcher.search(Query.parse(text, 5, mode))
                seconds[name][mode].append(time.perf_counter() - started)
    return {
        name: {mode: percentiles(values) for mode, values in by_mode.items()}
        for name, by_mode in seconds.items()
    }


def du(path: Path) -> int:
    """Bytes under ``path`` (a file or a folder)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--docs", type=int, default=0, help="first N abstracts + judged ones (0: all)"
    )
    parser.add_argument("--uri", help="Milvus URI (default: a Milvus Lite file in a temp dir)")
    args = parser.parse_args()
    dataset = load_beir(SCIFACT, "test")
    if args.docs:
        # a smaller corpus, to save embedding time on a busy machine: the first --docs
        # abstracts plus every abstract judged relevant to a test query (so each query
        # keeps its answers); nDCG@10 is then higher than on the whole corpus, and the
        # figure that matters is the difference between the backends
        judged = {doc for rel in dataset.qrels.values() for doc in rel}
        kept = [d for n, d in enumerate(dataset.documents) if n < args.docs or d.source in judged]
        dataset = replace(dataset, documents=kept)
    print(f"SciFact test: {len(dataset.documents)} abstracts, {len(dataset.queries)} queries")
    real = make_embedder("default")
    cache = CachedEmbedder(real, RESULTS / "cache" / f"scifact-minilm-{real.precision}.npz")
    index = Index.from_documents(dataset.documents, embedder=cache)
    cache.save()
    texts = list(dataset.queries.values())
    vectors = dict(zip(texts, cache.embed_batch(texts), strict=True))
    cache.save()
    print(f"SciFact: {index.chunk_count} chunks", file=sys.stderr)

    payload: dict[str, Any] = {
        "abstracts": len(dataset.documents),
        "corpus": "whole" if not args.docs else f"first {args.docs} + judged",
        "chunks": index.chunk_count,
    }
    with tempfile.TemporaryDirectory() as scratch:
        uri = args.uri or str(Path(scratch) / "bench.db")
        folder = Path(scratch) / "scifact"
        store = MilvusStore(folder, uri)
        index.save_to(store)
        # the default index's vectors and chunks, written to Milvus: nothing embedded again,
        # but every candidate of the Milvus run comes from a Milvus search
        on_milvus = Index.load_from(store, embedder=cache, verify=False)
        assert on_milvus.state.candidates is not None
        quality = {}
        for name, which in (("default", index), ("milvus", on_milvus)):
            quality[name] = {
                mode: round(row["ndcg@10"], 4)
                for mode, row in evaluate_beir(which, dataset, metrics=("ndcg@10",)).items()
            }
            print(f"  nDCG@10 {name}: {quality[name]}", file=sys.stderr)
        payload["ndcg@10"] = quality

        rows = []
        modes = ("hybrid", "dense", "bm25")
        for size in [int(s) for s in args.sizes.split(",")]:
            local = scaled_searcher(index.searcher, size, real)
            local = Searcher(local.state, local.settings, lambda q: vectors[q])
            size_uri = args.uri or str(Path(scratch) / f"bench-{size}.db")
            remote = milvus_searcher(
                local, index.settings, index.model_name, Path(scratch) / f"s{size}", size_uri
            )
            asked = texts[: args.queries]
            row: dict[str, Any] = {
                "chunks": size,
                **timed_alternating({"default": local, "milvus": remote}, asked, modes),
            }
            state = local.state
            row["default_bytes_per_chunk"] = round(
                (state.vectors.nbytes + local.sparse.memory_bytes() + local.dense.memory_bytes())
                / size
            )
            if not args.uri:
                row["milvus_lite_file_bytes_per_chunk"] = round(du(Path(size_uri)) / size)
            print(f"  {size}: {row}", file=sys.stderr)
            rows.append(row)
        payload["latency"] = rows
    payload["command"] = " ".join(sys.argv)
    write_results("milvus", payload)

    print(
        f"\nmachine: {machine()['cpu']}, {machine()['cores']} cores, shared with other jobs; "
        "Milvus Lite"
    )
    print(f"command: {' '.join(sys.argv)}")
    print(
        f"SciFact test nDCG@10 ({len(dataset.documents)} abstracts, {payload['corpus']}; "
        f"{index.chunk_count} chunks; same chunks and vectors, searched by each backend)"
    )
    print(f"{'mode':>8} {'default':>8} {'milvus':>8} {'diff':>7}")
    for mode in ("bm25", "dense", "hybrid"):
        a, b = quality["default"][mode], quality["milvus"][mode]
        print(f"{mode:>8} {a:>8.4f} {b:>8.4f} {b - a:>+7.4f}")
    print(
        "\nquery latency, ms (query vector precomputed; the backends alternate query by "
        "query; beyond SciFact's own chunks the vectors are synthetic)"
    )
    print(f"{'chunks':>8} {'mode':>7} {'default p50':>12} {'p99':>7} {'milvus p50':>11} {'p99':>7}")
    for row in rows:
        for mode in ("hybrid", "dense", "bm25"):
            d, m = row["default"][mode], row["milvus"][mode]
            print(
                f"{row['chunks']:>8} {mode:>7} {d['p50_ms']:>12.1f} {d['p99_ms']:>7.1f} "
                f"{m['p50_ms']:>11.1f} {m['p99_ms']:>7.1f}"
            )
    print(
        "\nbytes per chunk: default = vectors + FAISS + bm25s in the process; "
        "Milvus Lite = its file"
    )
    for row in rows:
        lite = row.get("milvus_lite_file_bytes_per_chunk", "-")
        print(f"{row['chunks']:>8}: default {row['default_bytes_per_chunk']}, Milvus Lite {lite}")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    sys.exit(main())
