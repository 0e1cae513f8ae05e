"""Real documents: the memorandum beside two PDF manuals and two HTML pages of this host.

    PYTHONPATH=src .venv/bin/python bench/bench_documents.py [--misses]

Copies the memorandum and four documents Debian installs under /usr/share/doc (the GNU
Libtasn1 manual and the Shared MIME-info specification as PDFs, the Debian Python policy
(Sphinx HTML) and zlib's usage example (HTML)) into a temporary corpus, indexes it with
the bundled model (passage vectors cached in ``bench/results/cache/``) and scores
``data/documents_qa.jsonl``: 48 questions, 12 per document, written from the documents'
text without running tpd_qa on them; 16 are tagged ``hard`` (no key word of the answer
in the question). Skips with a note when a document is missing. Writes
``bench/results/documents.json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import CORPUS, RESULTS, ROOT, CachedEmbedder, write_results

from tpd_qa.embedding import SentenceTransformerEmbedder
from tpd_qa.evaluation import evaluate_qa, format_table, load_qa
from tpd_qa.index import Index

QUESTIONS = ROOT / "data" / "documents_qa.jsonl"
DOCUMENTS = (
    CORPUS / "us-japan-technology-prosperity-deal.txt",
    Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
    Path("/usr/share/doc/python3/python-policy.html"),
    Path("/usr/share/doc/zlib1g-dev/examples/zlib_how.html"),
)
METRICS = ("hit@1", "hit@5", "mrr@10")
MODES = ("hybrid", "dense", "bm25")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list questions not ranked first")
    args = parser.parse_args()
    missing = [str(path) for path in DOCUMENTS if not path.is_file()]
    if missing:
        print(f"skipped: not on this host: {', '.join(missing)}", file=sys.stderr)
        return 0
    embedder = CachedEmbedder(SentenceTransformerEmbedder(), RESULTS / "cache" / "documents.npz")
    with tempfile.TemporaryDirectory() as folder:
        for path in DOCUMENTS:
            shutil.copy(path, Path(folder) / path.name)
        index, report = Index.build(Path(folder), embedder=embedder)
    embedder.save()
    items = load_qa(QUESTIONS)
    print(f"{report.documents} documents, {report.chunks} passages", file=sys.stderr)
    payload: dict[str, Any] = {"questions": len(items), "passages": report.chunks, "sets": {}}
    groups = {"all": items, "hard": [i for i in items if "hard" in i.tags]}
    for name, group in groups.items():
        results, ranks = evaluate_qa(index, group, MODES, METRICS, k=10)
        payload["sets"][name] = {"questions": len(group), "results": results, "ranks": ranks}
        print(f"\n{name}: {len(group)} questions")
        print(format_table(results, METRICS))
        if args.misses and name == "all":
            text = {item.id: item.question for item in group}
            for qid, rank in ranks["hybrid"].items():
                if rank != 1:
                    print(f"  {qid} rank={rank or '>10'}  {text[qid]}")
    write_results("documents", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
