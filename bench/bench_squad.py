"""Wikipedia QA on SQuAD v1.1 train articles: does the first passage hold the answer?

    .venv/bin/python bench/bench_squad.py [--no-evidence-compare] [--limit N]

Each of the 11 articles in ../shared/data/squad-train/ becomes one Markdown document
(title heading, one paragraph per SQuAD context); each of the 3,807 train questions is a
hit at k when a top-k passage from the right article contains one of its gold answers
(passages over 2,000 characters never count). Prints hit@1 and hit@5 per mode, with and
without the second stage (``SearchSettings(evidence=False)``), and how often the
marked answer sentence of a first-ranked hit holds the answer. This is a train split:
the second stage's weights were chosen on it (and on the memorandum set), so these are
training figures, not held-out ones. Vectors are cached in bench/results/cache/.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, SHARED, CachedEmbedder, machine, write_results

from tpd_qa.embedding import SentenceTransformerEmbedder
from tpd_qa.index import Index, IndexSettings, SearchSettings
from tpd_qa.index.search import Searcher
from tpd_qa.query import Query

SQUAD = SHARED / "data" / "squad-train" / "train-v1.1-first-11-articles.json"
MAX_PASSAGE_CHARS = 2000

Question = tuple[str, str, list[str]]


def load(path: Path = SQUAD) -> tuple[dict[str, str], list[Question]]:
    """Documents (source -> Markdown text) and questions (question, source, answers)."""
    documents: dict[str, str] = {}
    questions: list[Question] = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        source = f"{article['title']}.md"
        contexts = [p["context"].strip() for p in article["paragraphs"]]
        title = article["title"].replace("_", " ")
        documents[source] = f"# {title}\n\n" + "\n\n".join(contexts) + "\n"
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [a["text"] for a in qa["answers"]]
                questions.append((qa["question"], source, answers))
    return documents, questions


def score(searcher: Searcher, questions: list[Question], mode: str) -> dict[str, float]:
    hit1 = hit5 = answer_hits = firsts = 0
    started = time.perf_counter()
    for question, source, answers in questions:
        passages = searcher.search(Query.parse(question, 5, mode))
        good = [
            p.source == source
            and len(p.text) <= MAX_PASSAGE_CHARS
            and any(a in p.text for a in answers)
            for p in passages
        ]
        hit1 += bool(good and good[0])
        hit5 += any(good)
        if good and good[0]:
            firsts += 1
            answer_hits += any(a in passages[0].answer for a in answers)
    n = len(questions)
    return {
        "hit@1": hit1 / n,
        "hit@5": hit5 / n,
        "answer_sentence_holds_answer": answer_hits / max(firsts, 1),
        "ms_per_question": 1000 * (time.perf_counter() - started) / n,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, help="only the first N questions")
    args = parser.parse_args()
    if not SQUAD.is_file():
        print(f"skipped: {SQUAD} not found", file=sys.stderr)
        return 0
    documents, questions = load()
    questions = questions[: args.limit] if args.limit else questions
    embedder = CachedEmbedder(
        SentenceTransformerEmbedder(), RESULTS / "cache" / "squad-train-minilm.npz"
    )
    embedder.embed_batch([q for q, _, _ in questions])  # one batch, then cached
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder)
        for source, text in documents.items():
            (corpus / source).write_text(text, encoding="utf-8")
        index, _report = Index.build(corpus, settings=IndexSettings(), embedder=embedder)
    embedder.save()
    lengths = sorted(c.end - c.start for c in index.chunks())
    results: dict[str, dict[str, float]] = {}
    plain = Searcher(index.state, SearchSettings(evidence=False), index.searcher.query_vector)
    for name, searcher, mode in [
        ("hybrid", index.searcher, "hybrid"),
        ("hybrid, first stage only", plain, "hybrid"),
        ("dense", index.searcher, "dense"),
        ("bm25", index.searcher, "bm25"),
    ]:
        results[name] = score(searcher, questions, mode)
        row = results[name]
        print(
            f"{name:<26} hit@1 {row['hit@1']:.3f}  hit@5 {row['hit@5']:.3f}  "
            f"answer sentence {row['answer_sentence_holds_answer']:.3f}  "
            f"{row['ms_per_question']:.1f} ms/question",
            flush=True,
        )
    print(
        f"{len(questions)} questions, {len(lengths)} passages, "
        f"median passage {lengths[len(lengths) // 2]} characters"
    )
    write_results("squad", {"machine": machine(), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
