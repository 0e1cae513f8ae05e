"""BM25 ``k1`` / ``b`` on the public train sets: SQuAD train hit@1/5 and SciFact train nDCG@10.

    PYTHONPATH=src .venv/bin/python bench/tune_keywords.py [K1,B ...]

Each setting builds the SQuAD train index (11 articles, float32 vectors cached by
bench_squad.py) and the SciFact train index (vectors cached at the automatic precision,
as bench_latency.py and bench_quality.py cache them) with
``IndexSettings(sparse=SparseSettings(k1=K1, b=B))``, everything else default, and scores
hybrid search with the calls ``tpd-qa eval`` makes. Train splits only: this is how
``SparseSettings``' defaults were checked (bench/README.md, "Keyword parameters").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import RESULTS, SCIFACT, CachedEmbedder
from bench_squad import SQUAD

from tpd_qa.embedding import SentenceTransformerEmbedder, make_embedder
from tpd_qa.evaluation import evaluate_beir, evaluate_squad, load_beir, load_squad
from tpd_qa.index import Index, IndexSettings
from tpd_qa.sparse import SparseSettings

DEFAULT = ("1.2,0.75", "0.9,0.75", "1.2,0.4", "0.9,0.4", "0.7,0.4", "0.9,0.3")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("settings", nargs="*", default=DEFAULT, help="K1,B pairs")
    args = parser.parse_args()
    if not SQUAD.is_file() or not SCIFACT.is_dir():
        print("skipped: ../shared/data (SQuAD train, SciFact) not found", file=sys.stderr)
        return 0
    squad = load_squad(SQUAD)
    squad_vectors = CachedEmbedder(
        SentenceTransformerEmbedder(), RESULTS / "cache" / "squad-train-minilm.npz"
    )
    scifact = load_beir(SCIFACT, "train")
    model = make_embedder("default")
    scifact_vectors = CachedEmbedder(
        model, RESULTS / "cache" / f"scifact-minilm-{model.precision}.npz"
    )
    print(f"{'k1, b':<10} {'SQuAD hit@1':>11} {'hit@5':>7} {'SciFact nDCG@10':>16}")
    for setting in args.settings:
        k1, b = (float(value) for value in setting.split(","))
        settings = IndexSettings(sparse=SparseSettings(k1=k1, b=b))
        with tempfile.TemporaryDirectory() as folder:
            squad.write_corpus(Path(folder))
            index, _ = Index.build(Path(folder), settings=settings, embedder=squad_vectors)
        found, _ranks = evaluate_squad(index, squad, ["hybrid"], k=10)
        beir = Index.from_documents(scifact.documents, embedder=scifact_vectors, settings=settings)
        ndcg = evaluate_beir(beir, scifact, ("hybrid",))["hybrid"]["ndcg@10"]
        hybrid = found["hybrid"]
        print(
            f"{setting:<10} {hybrid['hit@1']:>11.4f} {hybrid['hit@5']:>7.4f} {ndcg:>16.4f}",
            flush=True,
        )
    squad_vectors.save()
    scifact_vectors.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
