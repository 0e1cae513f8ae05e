"""Japanese retrieval quality: hit@1, hit@5 and MRR@10 per mode on the Japanese question sets.

    .venv/bin/python bench/bench_japanese.py [--model NAME_OR_PATH] [--precision auto|float32]
                                             [--misses]

Indexes ``corpus/`` as it is (the English memorandum plus the Japanese documents under
``corpus/ja/``: a Markdown summary and Shift_JIS notes) with the bundled
all-MiniLM-L6-v2, or with ``--model`` (e.g. a multilingual sentence-transformers model in
the local cache), and scores three question sets through ``tpd_qa.evaluation``:

* ``data/japanese_qa.jsonl``: questions in Japanese about the Japanese documents;
* ``data/japanese_crosslingual_qa.jsonl``: English questions whose answer is only in the
  Japanese documents (needs a multilingual model to work at all);
* ``data/memorandum_qa.jsonl``: the English set, to see that the Japanese documents do not
  crowd out English answers.

Passage vectors are cached in ``bench/results/cache/`` (keyed by model and precision), so
reruns skip the model except for the questions. ``--misses`` lists, per mode, the
questions whose right passage is not ranked first. Writes ``bench/results/japanese.json``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

from _common import CORPUS, MEMORANDUM_QA, RESULTS, ROOT, CachedEmbedder, write_results

from tpd_qa.embedding import SentenceTransformerEmbedder
from tpd_qa.evaluation import QaItem, evaluate_qa, format_table, load_qa
from tpd_qa.index import Index

METRICS = ("hit@1", "hit@5", "mrr@10")
MODES = ("hybrid", "dense", "bm25")
SETS = {
    "japanese": ROOT / "data" / "japanese_qa.jsonl",
    "crosslingual": ROOT / "data" / "japanese_crosslingual_qa.jsonl",
    "english": MEMORANDUM_QA,
}


def _cache_name(model: str | None, precision: str) -> str:
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model).name if model else "minilm")
    return f"japanese-{label}-{precision}.npz"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--model", default=None, help="sentence-transformers model (default: bundled)"
    )
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"))
    parser.add_argument("--misses", action="store_true", help="list questions not ranked first")
    args = parser.parse_args()

    inner = SentenceTransformerEmbedder(args.model, precision=args.precision)
    embedder = CachedEmbedder(
        inner, RESULTS / "cache" / _cache_name(args.model, str(inner.precision))
    )
    started = time.perf_counter()
    index, report = Index.build(CORPUS, embedder=embedder)
    embedder.save()
    print(
        f"indexed {report.documents} documents, {report.chunks} passages "
        f"({embedder.misses} embedded, {time.perf_counter() - started:.1f} s) with {inner.name}",
        file=sys.stderr,
    )
    payload: dict[str, Any] = {"model": inner.name, "precision": str(inner.precision), "sets": {}}
    for name, path in SETS.items():
        items = load_qa(path)
        results, ranks = evaluate_qa(index, items, MODES, METRICS, k=10)
        payload["sets"][name] = {"questions": len(items), "results": results, "ranks": ranks}
        print(f"\n{name}: {path.relative_to(ROOT)} ({len(items)} questions)")
        print(format_table(results, METRICS))
        if args.misses:
            _print_misses(items, ranks)
    write_results("japanese", payload)
    return 0


def _print_misses(items: list[QaItem], ranks: dict[str, dict[str, int | None]]) -> None:
    questions = {item.id: item.question for item in items}
    for mode, by_id in ranks.items():
        missed = [(qid, rank) for qid, rank in by_id.items() if rank != 1]
        print(f"  {mode}: {len(missed)} not first")
        for qid, rank in missed:
            print(f"    {qid} rank={rank if rank else '>10'}  {questions[qid]}")


if __name__ == "__main__":
    sys.exit(main())
