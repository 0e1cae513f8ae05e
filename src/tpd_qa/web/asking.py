"""Answering a question: the search, the best sentence of each passage, its context.

Both endpoints (``/ask``: HTML for the page, ``/search``: JSON rows for scripts) go
through :func:`parse_request`, so a question is cleaned once, at the edge, and bad
``k`` or ``mode`` get the same message from each.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from tpd_qa.errors import IndexNotFoundError, QueryError, TpdQaError
from tpd_qa.export import passage_link
from tpd_qa.limits import DEFAULT_K, MAX_K
from tpd_qa.query import Query
from tpd_qa.records import Passage
from tpd_qa.web import analysis, views
from tpd_qa.web.state import ServingState

if TYPE_CHECKING:
    from tpd_qa.index import Index

__all__ = [
    "EXAMPLE_QUESTIONS",
    "SENTENCE_PICKING",
    "SentencePicking",
    "Asker",
    "parse_request",
]

log = logging.getLogger(__name__)

EXAMPLE_QUESTIONS: Final[tuple[str, ...]] = (
    "Which facility will help commercialize fusion?",
    "Does the deal commit any money?",
    "Who signed the memorandum?",
    "What will the two countries do about submarine cables?",
    "How will they cooperate on quantum technology?",
)


@dataclass(frozen=True, slots=True)
class SentencePicking:
    """How a card's best sentences are chosen for highlighting.

    Scores are cosine + ``lexical_weight`` × word overlap; measured on corpus/,
    answering sentences score 0.38-0.81 and unrelated ones 0.02-0.34.
    """

    semantic_cards: int = 5  # cards scored with the model; the rest by words alone
    lexical_weight: float = 0.15  # word overlap's weight beside the cosine
    semantic_min: float = 0.35  # least score of a highlighted sentence
    lexical_min: float = 0.5  # by words alone: least share of the question's words


SENTENCE_PICKING: Final = SentencePicking()
_SENTENCE_CACHE_SIZE = 4096


#: A request field as it arrives from the page or an API client: anything at all until
#: :func:`parse_request` has checked it.
Field = object


def parse_request(question: Field, k: Field, mode: Field, sources: Field) -> Query:
    """The one validation of both endpoints; raises QueryError with one clear sentence.

    ``k`` and ``mode`` left out (None) mean the defaults; empty ``sources`` (the page's
    empty filter) mean every document.
    """
    if isinstance(sources, str):
        sources = [sources]
    if sources is not None and not isinstance(sources, (list, tuple)):
        raise QueryError("sources must be a list of document names")
    chosen = [str(source) for source in sources or () if source]
    return Query.parse(
        question,
        DEFAULT_K if k is None else k,
        "hybrid" if mode is None else mode,
        chosen or None,
        k_limit=MAX_K,
    )


class Asker:
    """Runs questions against the serving index; one search at a time uses the model."""

    def __init__(self, state: ServingState) -> None:
        self._state = state
        self._model_lock = threading.Lock()
        self._sentences: OrderedDict[str, np.ndarray] = OrderedDict()
        self._sentence_lock = threading.Lock()

    def ask(
        self, question: Field, k: Field = DEFAULT_K, mode: Field = "hybrid", sources: Field = None
    ) -> str:
        """Answer ``question``: ranked passage cards, or a state message (never raises)."""
        try:
            if question is None or (isinstance(question, str) and not question.strip()):
                return views.render_state(
                    "hint", "Type a question first", f"For example: {EXAMPLE_QUESTIONS[0]}"
                )
            return self._answer(parse_request(question, k, mode, sources))
        except TpdQaError as exc:
            return views.render_state("error", "The search could not run", views.error_message(exc))
        except Exception:
            log.exception("search failed")
            return views.render_state(
                "error",
                "Something went wrong",
                "The search failed unexpectedly; the details are in the server log.",
            )

    def search(
        self, question: Field, k: Field = DEFAULT_K, mode: Field = "hybrid", sources: Field = None
    ) -> list[dict[str, Any]]:
        """Passages as JSON-ready dicts (rank, citation, similarity...); raises TpdQaError."""
        query, index, passages = self.passages(question, k, mode, sources)
        with self._model_lock:
            similarities = index.similarity(query.question, passages) if passages else []
        return [
            {"rank": rank, **p.to_dict(), "similarity": round(sim, 4)}
            for rank, (p, sim) in enumerate(zip(passages, similarities, strict=True), start=1)
        ]

    def passages(
        self, question: Field, k: Field, mode: Field, sources: Field
    ) -> tuple[Query, Index, list[Passage]]:
        """The query as understood, the index that answered and its passages, best first;
        raises TpdQaError (a bad request, no index)."""
        query = parse_request(question, k, mode, sources)
        self._state.refresh()
        index = self._state.index
        if index is None:
            raise IndexNotFoundError(self._state.problem or f"no index in {self._state.index_dir}")
        with self._model_lock:
            passages = index.search(query.question, query.k, mode=query.mode, sources=query.sources)
        return query, index, list(passages)

    def _answer(self, query: Query) -> str:
        self._state.refresh()
        index = self._state.index
        if index is None:
            return views.render_state(
                "noindex",
                "No index yet",
                self._state.problem or "Open the Documents tab and rebuild the index.",
            )
        if index.chunk_count == 0:
            return views.render_state(
                "noindex", "No documents indexed", "Add files to the corpus folder, then rebuild."
            )
        started = time.perf_counter()
        with self._model_lock:
            passages = index.search(query.question, query.k, mode=query.mode, sources=query.sources)
            similarities = index.similarity(query.question, passages) if passages else []
            semantic = self._sentence_similarities(
                index, query.question, passages[: SENTENCE_PICKING.semantic_cards]
            )
        terms = analysis.query_terms(query.question)
        coverage = analysis.term_coverage(terms, (p.text for p in passages))
        weak = analysis.is_weak(max(similarities) if similarities else None, coverage)
        shown: list[float | None] = list(similarities) or [None] * len(passages)
        cards = tuple(
            self._card(index, passage, similarity, terms, semantic.get(rank), weak)
            for rank, (passage, similarity) in enumerate(zip(passages, shown, strict=True))
        )
        answer = views.Answer(
            question=query.question,
            mode=query.mode,
            cards=cards,
            terms=terms,
            weak=weak,
            filtered=len(query.sources or ()),
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )
        return views.render_answer(answer)

    def _card(
        self,
        index: Index,
        passage: Passage,
        similarity: float | None,
        terms: tuple[str, ...],
        semantic: list[float] | None,
        weak: bool,
    ) -> views.Card:
        spans = analysis.passage_sentences(passage.text)
        best: tuple[tuple[int, int], ...] = ()
        if not weak:
            scores = analysis.lexical_sentence_scores(passage.text, spans, terms)
            minimum = SENTENCE_PICKING.lexical_min
            if semantic is not None and len(semantic) == len(scores):
                scores = [
                    s + SENTENCE_PICKING.lexical_weight * w
                    for s, w in zip(semantic, scores, strict=True)
                ]
                minimum = SENTENCE_PICKING.semantic_min
            best = tuple(spans[i] for i in analysis.best_sentences(scores, minimum=minimum))
        before = after = link = ""
        more_before = more_after = False
        with contextlib.suppress(TpdQaError):
            document = index.document(passage.source)
            link = passage_link(passage, sha256=document.sha256)
            text = document.text
            if text[passage.start : passage.end] == passage.text:
                before, after, more_before, more_after = analysis.context_window(
                    text, passage.start, passage.end
                )
        return views.Card(passage, similarity, best, before, after, more_before, more_after, link)

    def _sentence_similarities(
        self, index: Index, question: str, passages: Sequence[Passage]
    ) -> dict[int, list[float]]:
        """Cosine of each sentence of each passage to the question (cached per sentence)."""
        if not passages:
            return {}
        per_passage = [
            [p.text[a:b] for a, b in analysis.passage_sentences(p.text)] for p in passages
        ]
        with self._sentence_lock:
            missing = sorted(
                {s for group in per_passage for s in group if s not in self._sentences}
            )
        vectors = index.embedder.embed_batch([question, *missing])
        query = vectors[0]
        with self._sentence_lock:
            for sentence, vector in zip(missing, vectors[1:], strict=True):
                self._sentences[sentence] = vector
            while len(self._sentences) > _SENTENCE_CACHE_SIZE:
                self._sentences.popitem(last=False)
            found = {s: self._sentences.get(s) for group in per_passage for s in group}
        result: dict[int, list[float]] = {}
        for rank, group in enumerate(per_passage):
            scores = []
            for sentence in group:
                vector = found.get(sentence)
                ok = vector is not None and vector.shape == query.shape
                scores.append(float(vector @ query) if vector is not None and ok else 0.0)
            result[rank] = scores
        return result
