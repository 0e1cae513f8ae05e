"""Passage boundaries side by side: today's chunker against main's, one run, train data only.

    .venv/bin/python bench/bench_chunking.py [--variants main,aligned,...] [--scifact]
        [--scifact-split train] [--limit N]

Variants (all with the bundled all-MiniLM-L6-v2, vectors cached per text in
bench/results/cache/chunking-*.npz, so a variant that cuts a passage the same way reuses
its vector):

* ``main``: the chunker of the ``main`` branch (read with ``git show``), as the baseline;
* ``aligned``: today's default ``ChunkerSettings()`` (paragraphs and list items whole,
  long ones cut at sentences into even pieces, no overlap);
* ``aligned-overlap1``: the same with one sentence repeated where a unit was split;
* ``aligned-tN``: pack short blocks up to, and cut long ones into pieces of, N tokens
  instead of 160; ``aligned-pN``: pack up to N tokens only (``pack_tokens``);
  ``aligned-mN``: keep paragraphs up to N tokens whole (``max_tokens``, default 220);
  combine them in this order, e.g. ``aligned-m250-t200-p100``;
* ``*-noheader``: any variant with the passage embedded and keyword-indexed without its
  title/section header.

Prints, per variant: SQuAD train hybrid hit@1 / hit@5 (as bench/bench_squad.py), the
memorandum set over ``corpus/`` (as ``tpd-qa eval data/memorandum_qa.jsonl --corpus
corpus``), and on the SciFact corpus the amplification (characters of all passages ÷
characters of the documents), tokens embedded ÷ source tokens (headers included, model
tokenizer) and passage length median / min / max in characters. ``--scifact`` adds
SciFact nDCG@10 on ``--scifact-split`` (train for tuning; test only to report).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import bench_squad
from _common import CORPUS, MEMORANDUM_QA, RESULTS, ROOT, SCIFACT, CachedEmbedder, write_results

import tpd_qa.index.executor as executor
import tpd_qa.index.state as state
from tpd_qa.chunking import Chunker, ChunkerSettings
from tpd_qa.embedding import SentenceTransformerEmbedder
from tpd_qa.evaluation import (
    evaluate_beir,
    evaluate_qa,
    evaluate_squad,
    load_beir,
    load_qa,
    load_squad,
)
from tpd_qa.index import Index, IndexSettings

VARIANTS = ("main", "aligned", "aligned-overlap1", "aligned-noheader")


def _main_chunker() -> Any:
    """The ``Chunker`` class of the main branch, loaded from ``git show``."""
    source = subprocess.run(
        ["git", "show", "main:src/tpd_qa/chunking.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = RESULTS / "chunking_main.py"
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("chunking_main", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["chunking_main"] = module
    spec.loader.exec_module(module)
    return module


def _settings(variant: str) -> ChunkerSettings:
    base = ChunkerSettings()
    if "overlap1" in variant:
        base = replace(base, overlap_sentences=1)
    limit = re.search(r"-m(\d+)", variant)
    if limit:  # e.g. aligned-m250: paragraphs up to 250 tokens stay whole
        base = replace(base, max_tokens=int(limit.group(1)))
    target = re.search(r"-t(\d+)", variant)
    if target:  # e.g. aligned-t120: pack and split to 120 tokens
        base = replace(base, target_tokens=int(target.group(1)), pack_tokens=int(target.group(1)))
    pack = re.search(r"-p(\d+)", variant)
    if pack:  # e.g. aligned-p100: pack short blocks up to 100 tokens only
        base = replace(base, pack_tokens=int(pack.group(1)))
    return base


def _body_only(title: str, section: str | None, text: str) -> str:
    return text


@contextmanager
def variant_in_place(variant: str) -> Iterator[IndexSettings]:
    """Index settings for ``variant``, with main's chunker or no header patched in."""
    saved = executor.Chunker, executor.embedding_text, state.embedding_text
    settings = _settings(variant)
    try:
        if variant.startswith("main"):
            old = _main_chunker()

            def make(chunker_settings: ChunkerSettings, count: Any) -> Any:
                return old.Chunker(
                    old.ChunkerSettings(
                        max_tokens=chunker_settings.max_tokens,
                        target_tokens=chunker_settings.target_tokens,
                        min_chars=chunker_settings.min_chars,
                    ),
                    count,
                )

            executor.Chunker = make  # type: ignore[assignment,misc]
            settings = replace(settings, algorithm=4)
        if variant.endswith("noheader"):
            executor.embedding_text = state.embedding_text = _body_only  # type: ignore[assignment]
        yield IndexSettings(chunker=settings)
    finally:
        executor.Chunker, executor.embedding_text, state.embedding_text = saved  # type: ignore[misc]


def run_variant(variant: str, args: argparse.Namespace, embedder: Any) -> dict[str, Any]:
    row: dict[str, Any] = {}
    squad_embedder = CachedEmbedder(embedder, RESULTS / "cache" / "chunking-squad.npz")
    memo_embedder = CachedEmbedder(embedder, RESULTS / "cache" / "chunking-memo.npz")
    dataset = load_squad(bench_squad.SQUAD, limit=args.limit)
    squad_embedder.embed_batch([q.question for q in dataset.questions])  # once, then cached
    with variant_in_place(variant) as settings:
        with tempfile.TemporaryDirectory() as folder:
            dataset.write_corpus(Path(folder))
            index, _ = Index.build(Path(folder), settings=settings, embedder=squad_embedder)
        squad_embedder.save()
        scored = evaluate_squad(index, dataset, ("hybrid",), k=5)[0]["hybrid"]
        lengths = [len(c.text) for c in index.chunks()]
        row["squad"] = {
            "hit@1": scored["hit@1"],
            "hit@5": scored["hit@5"],
            "passages": len(lengths),
            "median_chars": statistics.median(lengths),
        }
        index, _ = Index.build(CORPUS, settings=settings, embedder=memo_embedder)
        memo_embedder.save()
        items = load_qa(MEMORANDUM_QA)
        memo, _ = evaluate_qa(index, items, ("hybrid",), ("hit@1", "mrr@10", "hit@5"))
        row["memorandum"] = memo["hybrid"] | {"passages": len(index.chunks())}
        dataset = load_beir(SCIFACT, args.scifact_split)
        if args.scifact:
            cached = CachedEmbedder(embedder, RESULTS / "cache" / "chunking-scifact.npz")
            index = Index.from_documents(dataset.documents, settings=settings, embedder=cached)
            cached.save()
            beir = evaluate_beir(index, dataset, ("hybrid",), ("ndcg@10", "recall@100"))
            row[f"scifact_{args.scifact_split}"] = beir["hybrid"]
        row["scifact_corpus"] = chunk_figures(dataset.documents, settings, embedder)
    return row


def chunk_figures(documents: list[Any], settings: IndexSettings, embedder: Any) -> dict[str, Any]:
    """corpus_figures without embedding: chunk the documents and count."""
    chunker: Chunker = executor.make_chunker(settings.chunker, embedder)
    lengths: list[int] = []
    embedded = source_tokens = source_chars = 0
    for document in documents:
        for chunk in chunker.chunk(document):
            lengths.append(len(chunk.text))
            text = executor.embedding_text(document.title, chunk.section, chunk.text)
            embedded += embedder.count_tokens(text)
        source_tokens += embedder.count_tokens(document.text)
        source_chars += len(document.text)
    return {
        "passages": len(lengths),
        "amplification": sum(lengths) / source_chars,
        "tokens_embedded_per_source_token": embedded / source_tokens,
        "median_chars": statistics.median(lengths),
        "min_chars": min(lengths),
        "max_chars": max(lengths),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--scifact", action="store_true", help="also SciFact nDCG@10 (slow)")
    parser.add_argument("--scifact-split", default="train", choices=("train", "test"))
    parser.add_argument("--limit", type=int, help="only the first N SQuAD questions")
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    results: dict[str, Any] = {}
    for variant in args.variants.split(","):
        results[variant] = row = run_variant(variant, args, embedder)
        squad, memo, corpus = row["squad"], row["memorandum"], row["scifact_corpus"]
        line = (
            f"{variant:<22} SQuAD hit@1 {squad['hit@1']:.3f} hit@5 {squad['hit@5']:.3f} "
            f"({squad['passages']} passages) | memo hit@1 {memo['hit@1']:.3f} "
            f"MRR {memo['mrr@10']:.3f} | SciFact amplification {corpus['amplification']:.3f} "
            f"tokens {corpus['tokens_embedded_per_source_token']:.3f} "
            f"passages {corpus['passages']} chars {corpus['median_chars']:.0f}/"
            f"{corpus['min_chars']}/{corpus['max_chars']}"
        )
        key = f"scifact_{args.scifact_split}"
        if key in row:
            line += f" | {key} nDCG@10 {row[key]['ndcg@10']:.4f}"
        print(line, flush=True)
    write_results(
        f"chunking{'-scifact-' + args.scifact_split if args.scifact else ''}",
        {"precision": embedder.precision, "variants": results},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
