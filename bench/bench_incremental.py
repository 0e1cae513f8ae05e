"""Incremental update cost: add one document to a ~10k-chunk index built from a folder.

    .venv/bin/python bench/bench_incremental.py [--docs 3000] [--adds 5]

The corpus is SciFact abstracts written as .txt files (title line, blank line, abstract)
to a temporary folder and indexed with ``Index.build`` (vectors cached in
bench/results/cache/, so only the first run embeds them). Then, ``--adds`` times, one new
abstract is written and ``Index.update`` runs with the live (uncached) bundled model: the
update's time splits into the new document's embedding time and everything else (scan
the folder (files whose stat is unchanged are not read), chunk, rebuild BM25 and the
vector index), which is the constant.
``save`` (write a new generation atomically) is timed separately. Writes
bench/results/incremental.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, SCIFACT, CachedEmbedder, machine, write_results

from tpd_qa.embedding import SentenceTransformerEmbedder
from tpd_qa.evaluation import load_beir
from tpd_qa.index import Index


class _Timed:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens
        self.seconds = 0.0
        self.count = 0

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.embed_batch(texts)
        self.seconds += time.perf_counter() - started
        self.count += len(texts)
        return vectors

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def _write(folder: Path, document: Any) -> None:
    body = document.text[len(document.title) :].strip()
    (folder / f"{document.source}.txt").write_text(f"{document.title}\n\n{body}\n", "utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--adds", type=int, default=5)
    args = parser.parse_args()
    documents = load_beir(SCIFACT, "test").documents
    model = SentenceTransformerEmbedder()
    cache = CachedEmbedder(model, RESULTS / "cache" / f"incremental-minilm-{model.precision}.npz")
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as temporary:
        corpus = Path(temporary) / "corpus"
        corpus.mkdir()
        for document in documents[: args.docs]:
            _write(corpus, document)
        # Files written within the last 2 s are always re-hashed (a racy timestamp could
        # hide a later write); a real corpus is older than that.
        time.sleep(2.1)
        started = time.perf_counter()
        index, report = Index.build(corpus, embedder=cache)
        build_s = time.perf_counter() - started
        cache.save()
        print(
            f"built {index.chunk_count} chunks from {report.documents} files in "
            f"{build_s:.1f} s ({cache.misses} embedded now)",
            file=sys.stderr,
        )
        started = time.perf_counter()
        index.save(Path(temporary) / "index")
        first_save = time.perf_counter() - started
        started = time.perf_counter()
        unchanged = index.update(corpus)
        noop_s = time.perf_counter() - started
        assert unchanged.embedded_chunks == 0
        timed = _Timed(model)
        index._embedder = timed  # live model from here on: nothing cached for new documents
        for document in documents[args.docs : args.docs + args.adds]:
            _write(corpus, document)
            timed.seconds, timed.count = 0.0, 0
            started = time.perf_counter()
            update = index.update(corpus)
            total = time.perf_counter() - started
            started = time.perf_counter()
            index.save(Path(temporary) / "index")
            save_s = time.perf_counter() - started
            rows.append(
                {
                    "new_chunks": update.embedded_chunks,
                    "update_s": round(total, 3),
                    "embedding_s": round(timed.seconds, 3),
                    "constant_s": round(total - timed.seconds, 3),
                    "save_s": round(save_s, 3),
                }
            )
            print(
                f"added 1 document ({update.embedded_chunks} chunks) to {index.chunk_count}: "
                f"{total:.2f} s = {timed.seconds:.2f} s embedding + "
                f"{total - timed.seconds:.2f} s rest; save {save_s:.2f} s",
                file=sys.stderr,
            )
    result = {
        "index_chunks": index.chunk_count,
        "index_documents": len(index.documents()),
        "build_s": round(build_s, 1),
        "first_save_s": round(first_save, 2),
        "unchanged_update_s": round(noop_s, 3),
        "adds": rows,
        "median": {key: round(statistics.median(r[key] for r in rows), 3) for key in rows[0]},
    }
    write_results("incremental", result)
    median = result["median"]
    print(f"\nmachine: {machine()['cpu']}, {machine()['cores']} cores")
    print(
        f"index of {result['index_chunks']} chunks; adding one document (median of "
        f"{len(rows)}): {median['update_s']} s = {median['embedding_s']} s embedding its "
        f"{median['new_chunks']:.0f} chunks + {median['constant_s']} s constant; "
        f"saving {median['save_s']} s; an update with no change {result['unchanged_update_s']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
