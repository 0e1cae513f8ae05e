"""SQuAD-format question sets: articles become Markdown documents, gold answers the evidence.

A SQuAD file (``{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}``, v1.1
or v2.0) is turned into one Markdown document per article: the title as a level-1
heading, then one paragraph per context. A question is answered at rank ``r`` when the
``r``-th passage comes from its article, is at most :data:`MAX_PASSAGE_CHARS` long (a
whole page or document never counts) and contains one of its gold answers (exact text,
as SQuAD gives it). Questions without answers (SQuAD 2.0's unanswerable ones) are left
out. Besides hit@1, hit@5 and MRR@10 the first passage's marked answer sentence
(``answer_start``/``answer_end``) is judged: ``answer@1`` is the share of questions
whose first passage is from the right article and whose answer sentence holds a gold
answer; ``answer|hit@1`` the same share among questions whose first passage is a hit.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tpd_qa.errors import ConfigError
from tpd_qa.evaluation.metrics import percentile

if TYPE_CHECKING:
    from tpd_qa.index import Index

__all__ = [
    "MAX_PASSAGE_CHARS",
    "SQUAD_METRICS",
    "SquadDataset",
    "SquadQuestion",
    "evaluate_squad",
    "first_hit",
    "is_squad",
    "load_squad",
    "squad_hit",
    "squad_markdown",
    "squad_metrics",
]

#: A passage longer than this never counts as a hit (it would be most of an article).
MAX_PASSAGE_CHARS = 2000
SQUAD_METRICS = ("hit@1", "hit@5", "mrr@10", "answer@1", "answer|hit@1", "chars@1", "chars@5")
_UNSAFE = re.compile(r'[\x00-\x1f/\\:*?"<>|]')


@dataclass(frozen=True, slots=True)
class SquadQuestion:
    """One question: its article's document (``source``) and its gold answers."""

    id: str
    question: str
    source: str
    answers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SquadDataset:
    """Articles as Markdown documents (file name -> text) and their questions."""

    name: str
    documents: dict[str, str]
    questions: list[SquadQuestion]

    def write_corpus(self, folder: Path) -> None:
        """Write each article as ``folder/<source>`` (UTF-8 Markdown)."""
        folder.mkdir(parents=True, exist_ok=True)
        for source, text in self.documents.items():
            (folder / source).write_text(text, encoding="utf-8")


def squad_markdown(title: str, contexts: Sequence[str]) -> str:
    """An article as Markdown: ``# title``, then one paragraph per context."""
    paragraphs = [context.strip() for context in contexts]
    return f"# {title}\n\n" + "\n\n".join(paragraphs) + "\n"


def _looks_like_squad(data: Any) -> bool:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return False
    articles = data["data"]
    return all(isinstance(a, dict) and "paragraphs" in a for a in articles[:1])


def is_squad(path: Path) -> bool:
    """Whether ``path`` is one JSON object with a ``data`` list of articles with paragraphs
    (a QA JSONL file has several lines and does not parse as one JSON value)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return _looks_like_squad(data)


def _source_name(title: str, taken: set[str]) -> str:
    stem = _UNSAFE.sub("_", title).strip(" .") or "article"
    name, number = f"{stem}.md", 2
    while name.casefold() in taken:
        name, number = f"{stem} ({number}).md", number + 1
    taken.add(name.casefold())
    return name


def load_squad(path: Path, *, limit: int | None = None) -> SquadDataset:
    """Read a SQuAD JSON file (see the module doc); ``limit`` keeps the first N questions."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"SQuAD file {path} is unreadable ({exc})") from exc
    if not _looks_like_squad(data):
        raise ConfigError(f"{path} is not a SQuAD file (no data list of articles)")
    documents: dict[str, str] = {}
    questions: list[SquadQuestion] = []
    taken: set[str] = set()
    for number, article in enumerate(data["data"], start=1):
        where = f"{path}: article {number}"
        paragraphs = article.get("paragraphs")
        if not isinstance(paragraphs, list) or not all(isinstance(p, dict) for p in paragraphs):
            raise ConfigError(f"{where}: paragraphs must be a list of objects")
        title = " ".join(str(article.get("title") or f"Article {number}").split())
        source = _source_name(title, taken)
        contexts = []
        for paragraph in paragraphs:
            context = paragraph.get("context")
            if not isinstance(context, str) or not context.strip():
                raise ConfigError(f"{where}: a paragraph has no context")
            contexts.append(context)
            for qa in paragraph.get("qas") or ():
                questions.extend(_question(qa, source, where, len(questions)))
        documents[source] = squad_markdown(title.replace("_", " "), contexts)
    seen: dict[str, int] = {}
    for i, question in enumerate(questions):  # ids key the runs: keep them unique
        seen[question.id] = seen.get(question.id, 0) + 1
        if seen[question.id] > 1:
            questions[i] = replace(question, id=f"{question.id}#{seen[question.id]}")
    if limit is not None:
        questions = questions[:limit]
    if not questions:
        raise ConfigError(f"SQuAD file {path} holds no answerable questions")
    return SquadDataset(path.stem, documents, questions)


def _question(qa: Any, source: str, where: str, count: int) -> list[SquadQuestion]:
    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
        raise ConfigError(f"{where}: a question entry has no question text")
    answers = tuple(
        dict.fromkeys(
            a["text"]
            for a in qa.get("answers") or ()
            if isinstance(a, dict) and isinstance(a.get("text"), str) and a["text"].strip()
        )
    )
    if not answers or not qa["question"].strip():
        return []  # unanswerable (SQuAD 2.0) or empty: nothing to judge
    qid = str(qa.get("id") or f"q{count + 1}")
    return [SquadQuestion(qid, qa["question"].strip(), source, answers)]


# ---------------------------------------------------------------------- judging


def squad_hit(source: str, text: str, question: SquadQuestion) -> bool:
    """A passage answers ``question``: its article, not too long, holds a gold answer."""
    return (
        source == question.source
        and len(text) <= MAX_PASSAGE_CHARS
        and any(answer in text for answer in question.answers)
    )


def first_hit(question: SquadQuestion, passages: Sequence[tuple[str, str]]) -> int | None:
    """The 1-based rank of the first of the (source, text) passages that answers, if any."""
    for rank, (source, text) in enumerate(passages, start=1):
        if squad_hit(source, text, question):
            return rank
    return None


def squad_metrics(
    questions: Sequence[SquadQuestion],
    found: Mapping[str, Sequence[tuple[str, str]]],
    spans: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """hit@1, hit@5 and MRR@10 of ranked (source, text) passages per question id, and
    how long the passages shown are (chars@1: median characters of the first passage,
    chars@5: of the first five); with ``spans`` (question id -> the first passage's
    answer sentence), answer@1 and answer|hit@1 too."""
    hit1 = hit5 = reciprocal = answered = firsts = 0.0
    first_lengths: list[float] = []
    lengths: list[float] = []
    for question in questions:
        passages = found.get(question.id, ())
        first_lengths += [len(text) for _source, text in passages[:1]]
        lengths += [len(text) for _source, text in passages[:5]]
        rank = first_hit(question, passages[:10])
        hit1 += rank == 1
        hit5 += rank is not None and rank <= 5
        reciprocal += 1 / rank if rank is not None else 0.0
        if spans is not None and passages and passages[0][0] == question.source:
            holds = any(answer in spans.get(question.id, "") for answer in question.answers)
            answered += holds
            firsts += holds and rank == 1
    n = max(len(questions), 1)
    out = {"hit@1": hit1 / n, "hit@5": hit5 / n, "mrr@10": reciprocal / n}
    out["chars@1"] = percentile(first_lengths, 50)
    out["chars@5"] = percentile(lengths, 50)
    if spans is not None:
        out["answer@1"] = answered / n
        out["answer|hit@1"] = firsts / hit1 if hit1 else 0.0
    return out


def evaluate_squad(
    index: Index,
    dataset: SquadDataset,
    modes: Sequence[str] = ("bm25", "dense", "hybrid"),
    *,
    k: int = 10,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int | None]]]:
    """Metrics per mode (:data:`SQUAD_METRICS`, plus the median query time) and per mode
    the rank of each question's first answering passage."""
    results: dict[str, dict[str, float]] = {}
    ranks: dict[str, dict[str, int | None]] = {}
    for mode in modes:
        found: dict[str, list[tuple[str, str]]] = {}
        spans: dict[str, str] = {}
        latencies: list[float] = []
        for question in dataset.questions:
            started = time.perf_counter()
            passages = index.search(question.question, k, mode=mode)
            latencies.append(time.perf_counter() - started)
            found[question.id] = [(p.source, p.text) for p in passages]
            if passages:
                spans[question.id] = passages[0].answer
        results[mode] = squad_metrics(dataset.questions, found, spans)
        results[mode]["query_ms_p50"] = percentile(latencies, 50) * 1000
        ranks[mode] = {q.id: first_hit(q, found[q.id]) for q in dataset.questions}
    return results, ranks
