"""The txtai peer: run by bench_quality.py and bench_squad.py inside the benchmark venv
(bench/setup_peers.sh).

    /work/bench-venv/bin/python bench/peer_txtai.py SPEC.json OUT.json

txtai 9 ``Embeddings(path=<bundled all-MiniLM-L6-v2>, content=True, hybrid=True)``:
dense vectors plus its BM25 index, fused by txtai itself. SciFact abstracts are indexed
one record per document (title + abstract), the way BEIR runs usually do; the
memorandum is indexed one record per paragraph (what txtai's Textractor gives with
``paragraphs=True``), and so is each SQuAD article (its Markdown lines: the title and
one line per context). Each part runs only when the spec holds it. Does not import
tpd_qa.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _embeddings(model: str):
    from txtai import Embeddings

    return Embeddings(path=model, content=True, hybrid=True)


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    from importlib.metadata import version

    out: dict = {"txtai": version("txtai")}
    if "scifact" in spec:
        _scifact(spec, out)
    if "memorandum" in spec:
        _memorandum(spec, out)
    if "squad" in spec:
        _squad(spec, out)
    Path(sys.argv[2]).write_text(json.dumps(out), encoding="utf-8")
    return 0


def _scifact(spec: dict, out: dict) -> None:
    cache = Path(spec["cache"])
    started = time.perf_counter()
    embeddings = _embeddings(spec["model"])
    if (cache / "config.json").is_file() or (cache / "config").is_file():
        embeddings.load(str(cache))
        out["scifact_index_s"] = None
    else:
        rows = []
        with open(Path(spec["scifact"]) / "corpus.jsonl", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                rows.append((record["_id"], f"{record['title']} {record['text']}".strip(), None))
        embeddings.index(rows)
        embeddings.save(str(cache))
        out["scifact_index_s"] = round(time.perf_counter() - started, 1)
    queries = spec["queries"]
    ids = list(queries)
    results = embeddings.batchsearch([queries[q] for q in ids], limit=100)
    out["scifact"] = {
        qid: {str(r["id"]): float(r["score"]) for r in found}
        for qid, found in zip(ids, results, strict=True)
    }


def _memorandum(spec: dict, out: dict) -> None:
    memo = spec["memorandum"]
    paragraphs = [p.strip() for p in memo["text"].split("\n") if p.strip()]
    small = _embeddings(spec["model"])
    small.index([(f"p{n}", text, None) for n, text in enumerate(paragraphs)])
    questions = memo["questions"]
    qids = list(questions)
    found = small.batchsearch([questions[q] for q in qids], limit=10)
    out["memorandum"] = {
        qid: [[memo["source"], r["text"]] for r in hits]
        for qid, hits in zip(qids, found, strict=True)
    }


def _squad(spec: dict, out: dict) -> None:
    squad = spec["squad"]
    rows, sources = [], {}
    for source, text in squad["documents"].items():
        for line in (line.strip() for line in text.split("\n")):
            if line:
                record = f"r{len(rows)}"
                sources[record] = source
                rows.append((record, line, None))
    embeddings = _embeddings(spec["model"])
    embeddings.index(rows)
    questions = squad["questions"]
    qids = list(questions)
    started = time.perf_counter()
    found = embeddings.batchsearch([questions[q] for q in qids], limit=squad["limit"])
    out["squad_ms_per_question"] = 1000 * (time.perf_counter() - started) / max(len(qids), 1)
    out["squad"] = {
        qid: [[sources[str(r["id"])], r["text"]] for r in hits]
        for qid, hits in zip(qids, found, strict=True)
    }


if __name__ == "__main__":
    sys.exit(main())
