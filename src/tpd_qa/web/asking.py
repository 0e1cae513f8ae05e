"""Answering a question: the search, each passage's answer sentence and its context.

Both endpoints (``/ask``: HTML for the page, ``/search``: JSON rows for scripts) go
through :func:`parse_request`, so a question is cleaned once, at the edge, and bad
``k`` or ``mode`` get the same message from each.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Final

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
        terms = analysis.query_terms(query.question)
        coverage = analysis.term_coverage(terms, (p.text for p in passages))
        weak = analysis.is_weak(max(similarities) if similarities else None, coverage)
        shown: list[float | None] = list(similarities) or [None] * len(passages)
        cards = tuple(
            self._card(index, passage, similarity, weak)
            for passage, similarity in zip(passages, shown, strict=True)
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
        self, index: Index, passage: Passage, similarity: float | None, weak: bool
    ) -> views.Card:
        # the answer sentence is the index's (the same as in the CLI and the JSON), shown
        # unless the whole answer is a weak match
        best: tuple[tuple[int, int], ...] = ()
        if not weak and passage.answer_start is not None and passage.answer_end is not None:
            best = ((passage.answer_start - passage.start, passage.answer_end - passage.start),)
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
