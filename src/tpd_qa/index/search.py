"""Answering questions from an index state: dense + keyword search, fusion, filters.

:class:`Searcher` is the public seam for everything that searches: the ``Index``
facade validates a question into a :class:`~tpd_qa.query.Query` and hands it here, and
benchmarks use the same object (and its ``dense`` and ``sparse`` structures) directly.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from tpd_qa.dense import DenseIndex
from tpd_qa.evidence import (
    FEATURES,
    Evidence,
    EvidenceWeights,
    default_weights,
    idf_of_texts,
    query_kind,
)
from tpd_qa.fusion import convex_fusion, reciprocal_rank_fusion, weighted_fusion
from tpd_qa.index.state import CandidateSource, IndexState, SearchSettings, StoredDocument
from tpd_qa.modes import Mode
from tpd_qa.query import Query, clean_question
from tpd_qa.records import Passage
from tpd_qa.reranking import Reranker
from tpd_qa.sparse import SparseIndex

__all__ = ["LocalCandidates", "QueryVectors", "Ranked", "Scored", "Searcher"]

#: Candidates of one retriever: (scores, rows), best first.
Scored = tuple[np.ndarray, np.ndarray]
#: (row, score) pairs, best first.
Ranked = list[tuple[int, float]]
#: The column of the best sentence's cosine among the second stage's features.
_SENTENCE_COSINE = FEATURES.index("sentence_cosine")
#: The column of the document's keyword coverage.
_DOCUMENT = FEATURES.index("document")


class _Run(NamedTuple):
    """Rows ``first..last`` of one document shown as one passage, ranked as ``best``."""

    first: int
    last: int
    best: int
    score: float


class QueryVectors:
    """Question -> embedding, remembering the last ``size`` questions.

    ``embed`` embeds a batch of texts; it is called only for questions not seen yet, so
    an index answering keyword searches never loads its model.
    """

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], size: int = 512) -> None:
        self._embed = embed
        self._size = size
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, question: str) -> np.ndarray:
        vector = self._cache.get(question)
        if vector is None:
            vector = np.asarray(self._embed([question])[0], dtype=np.float32)
            if len(self._cache) >= self._size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[question] = vector
        return vector


class LocalCandidates:
    """Candidates from the state's own FAISS and bm25s structures (the default backend)."""

    def __init__(self, state: IndexState) -> None:
        self.state = state

    def dense(self, vector: np.ndarray, depth: int, allowed: np.ndarray | None) -> Scored:
        if self.state.dense is None:
            raise ValueError("the index is empty")
        return self.state.dense.search(vector, depth, allowed)

    def keyword(self, question: str, depth: int, allowed: np.ndarray | None) -> Scored:
        if self.state.sparse is None:
            raise ValueError("the index is empty")
        return self.state.sparse.search(question, depth, allowed)


class Searcher:
    """Searches one :class:`IndexState` (which must be searchable when it has rows).

    ``query_vector`` turns a question into its embedding (a :class:`QueryVectors`, or
    any function of the question). Candidates come from ``state.candidates`` when the
    store attached a source (Milvus), else from the state's own structures; fusion,
    filters and overlap removal are the same either way. A ``reranker`` (a local
    cross-encoder) re-scores the ``settings.rerank_depth`` best hybrid candidates last.
    """

    def __init__(
        self,
        state: IndexState,
        settings: SearchSettings,
        query_vector: Callable[[str], np.ndarray],
        reranker: Reranker | None = None,
    ) -> None:
        if state.chunks and not state.searchable:
            raise ValueError("the state has rows but no search structures")
        self.state = state
        self.settings = settings
        self.query_vector = query_vector
        self.reranker = reranker
        self.source: CandidateSource = state.candidates or LocalCandidates(state)
        self._evidence: Evidence | None = None
        self.evidence_weights: EvidenceWeights = default_weights()

    @property
    def evidence(self) -> Evidence:
        """The second stage's evidence measure over this state's passages."""
        if self._evidence is None:
            state = self.state
            idf = (
                state.sparse.idf
                if state.sparse is not None
                else idf_of_texts([state.keyword_text(row) for row in range(len(state.chunks))])
            )
            self._evidence = Evidence(idf)
        return self._evidence

    @property
    def dense(self) -> DenseIndex:
        """The vector index over the state's rows."""
        if self.state.dense is None:
            raise ValueError("the index is empty")
        return self.state.dense

    @property
    def sparse(self) -> SparseIndex:
        """The BM25 index over the state's rows."""
        if self.state.sparse is None:
            raise ValueError("the index is empty")
        return self.state.sparse

    def search(self, query: Query) -> list[Passage]:
        """The ``query.k`` best passages, best first, without repeated (overlapping) text."""
        if not self.state.chunks:
            return []
        allowed = self.allowed_rows(query.sources)
        if allowed is not None and len(allowed) == 0:
            return []
        depth = max(self.settings.candidates, 4 * query.k)
        ranked = self.rank(query.question, query.mode, depth, allowed)
        return self.passages(ranked, query.k, query.question)

    def allowed_rows(self, sources: Iterable[str] | None) -> np.ndarray | None:
        """Rows of the documents named in ``sources`` (None: every row)."""
        return None if sources is None else self.state.rows_of(sources)

    def candidates(
        self, question: str, mode: Mode, depth: int, allowed: np.ndarray | None = None
    ) -> dict[str, Scored]:
        """Each retriever's ``depth`` best rows: ``dense`` and/or ``bm25`` by ``mode``."""
        scored: dict[str, Scored] = {}
        if mode in ("dense", "hybrid"):
            scored["dense"] = self.source.dense(self.query_vector(question), depth, allowed)
        if mode in ("bm25", "hybrid"):
            scored["bm25"] = self.source.keyword(question, depth, allowed)
        return scored

    def rank(
        self, question: str, mode: Mode, depth: int, allowed: np.ndarray | None = None
    ) -> Ranked:
        """Rows ranked for ``question``; hybrid mode fuses the two retrievers' candidates,
        then (with convex fusion) adds the evidence stage and (with a reranker) the
        cross-encoder's."""
        scored = self.candidates(question, mode, depth, allowed)
        if mode != "hybrid":
            scores, ids = scored[mode]
            return list(zip(ids.tolist(), scores.tolist(), strict=True))
        ranked = self.fuse(scored)
        if self.settings.evidence and self.settings.fusion == "convex" and ranked:
            # the evidence weights extend convex fusion's features
            ranked = self.second_stage(question, scored, ranked)
        if self.reranker is not None and ranked:
            ranked = self.rerank(question, ranked)
        return ranked

    def rerank(self, question: str, ranked: Ranked) -> Ranked:
        """The ``settings.rerank_depth`` best rows re-ordered by the reranker's scores.

        Re-scored rows carry the reranker's score (ties keep their earlier order); the
        rows after them keep their order, their scores capped at the lowest re-scored one
        so that scores never rise down the list.
        """
        if self.reranker is None:
            return ranked
        head, tail = ranked[: self.settings.rerank_depth], ranked[self.settings.rerank_depth :]
        texts = [self.state.keyword_text(row) for row, _score in head]
        scores = np.asarray(self.reranker.score(question, texts), dtype=np.float64).reshape(-1)
        if len(scores) != len(head):
            raise ValueError(f"the reranker gave {len(scores)} scores for {len(head)} passages")
        finite = np.isfinite(scores)
        if not finite.all():  # a broken model output ranks last, never as Infinity in JSON
            scores = np.where(finite, scores, (scores[finite].min() if finite.any() else 0) - 1)
        order = np.lexsort((np.arange(len(head)), -scores))
        reordered = [(head[i][0], float(scores[i])) for i in order]
        floor = float(scores.min())
        return reordered + [(row, min(score, floor)) for row, score in tail]

    def second_stage(self, question: str, scored: dict[str, Scored], ranked: Ranked) -> Ranked:
        """Re-score the fused candidates with the weights of the question's kind.

        Every candidate gets its cosine and scaled BM25 score; the evidence features
        (which cost a keyword analysis of the passage) are measured for the
        ``EvidenceWeights.depth`` best fused candidates only, the others keep zero
        evidence. So a Japanese question, whose kind weighs keywords alone, is ranked by
        BM25 over every candidate, whatever the fusion's order. A passage in another
        script than the question (CJK or not) keeps only ``cross_script`` of its cosines.
        An index without sentence vectors ranks without ``sentence_cosine``. For a kind
        that weighs keyword evidence and cosines (questions), when no measured candidate
        covers ``keyword_trust`` of the question's keyword weight (a paraphrase), the
        keyword features count in proportion to the best coverage.
        """
        kind = query_kind(question)
        weights = self.evidence_weights.for_kind(kind)
        if self.state.sentences is None:
            weights[_SENTENCE_COSINE] = 0.0
        rows = np.fromiter((row for row, _score in ranked), dtype=np.int64, count=len(ranked))
        bm25_rows, bm25_scores = scored["bm25"][1], scored["bm25"][0]
        top = float(bm25_scores[0]) if len(bm25_scores) else 0.0
        bm25 = dict(
            zip(
                bm25_rows.tolist(),
                (bm25_scores / top if top > 0 else bm25_scores).tolist(),
                strict=True,
            )
        )
        features = np.zeros((len(rows), len(weights)), dtype=np.float64)
        vector = self.query_vector(question)
        features[:, 0] = self.state.vectors[rows] @ vector
        head = rows[: self.evidence_weights.depth].tolist()
        if weights[_SENTENCE_COSINE] != 0.0:
            cosines = self.sentence_cosines(vector, head, features[:, 0])
            features[: len(head), _SENTENCE_COSINE] = cosines
        if self.evidence_weights.cross_script != 1.0 and weights[[0, _SENTENCE_COSINE]].any():
            texts = [self.state.chunks[int(row)].text for row in rows]
            other = self.evidence.cjk_rows(rows.tolist(), texts) != (kind == "cjk")
            features[other, 0] *= self.evidence_weights.cross_script
            features[other, _SENTENCE_COSINE] *= self.evidence_weights.cross_script
        features[:, 1] = [bm25.get(row, 0.0) for row in rows.tolist()]
        if weights[2:5].any():
            measured = self.evidence.measure(
                question, head, [self.state.chunks[row].text for row in head]
            )
            features[: len(head), 2:5] = [(m.coverage, m.sentence, m.bigram) for m in measured]
            trust = self.evidence_weights.keyword_trust
            if trust > 0 and weights[[0, _SENTENCE_COSINE]].any():  # cosines to fall back on
                best = float(features[: len(head), 2].max()) if head else 0.0
                weights[1:5] *= min(1.0, best / trust)
        if weights[_DOCUMENT] != 0.0:
            features[:, _DOCUMENT] = self.document_coverage(question, rows)
        scores = features @ weights
        order = np.lexsort((rows, -scores))
        return [(int(rows[i]), float(scores[i])) for i in order]

    def document_coverage(self, question: str, rows: np.ndarray) -> np.ndarray:
        """Each row's ``document`` feature: the share of the question's keyword weight
        that the row's document holds in any of its rows (title, sections and text)."""
        numbers = self.state.row_doc[rows]
        distinct = np.unique(numbers)
        docs = [self.state.docs[int(number)] for number in distinct]
        sparse = self.state.sparse
        if sparse is not None:
            starts = np.fromiter((d.first_row for d in docs), dtype=np.int64, count=len(docs))
            ends = starts + np.fromiter((d.chunks for d in docs), dtype=np.int64, count=len(docs))

            def holds(keys: Sequence[str]) -> np.ndarray:
                return sparse.holding(keys, starts, ends)

        else:  # postings elsewhere (Milvus): each document's keys, analysed once

            def holds(keys: Sequence[str]) -> np.ndarray:
                held = [
                    self.evidence.document_keys(int(number), functools.partial(self._texts, d))
                    for number, d in zip(distinct, docs, strict=True)
                ]
                return np.array([[key in h for h in held] for key in keys], dtype=bool).reshape(
                    len(keys), len(held)
                )

        per_document = self.evidence.documents(question, holds)
        per_row: np.ndarray = per_document[np.searchsorted(distinct, numbers)]
        return per_row

    def _texts(self, stored: StoredDocument) -> list[str]:
        """What each row of ``stored`` was keyword-indexed as."""
        return [self.state.keyword_text(row) for row in stored.rows]

    def sentence_cosines(
        self, vector: np.ndarray, rows: Sequence[int], passage_cosines: np.ndarray
    ) -> list[float]:
        """The cosine of each row's best answering sentence to the question ``vector``
        (a row with no stored sentence counts its passage cosine)."""
        store = self.state.sentences
        assert store is not None
        out = []
        for i, row in enumerate(rows):
            best = store.best_cosine(vector, store.of_row(row))
            out.append(float(passage_cosines[i]) if best is None else best)
        return out

    def fuse(self, scored: dict[str, Scored]) -> Ranked:
        """One ranking from the ``dense`` and ``bm25`` candidates, as ``settings`` says."""
        settings = self.settings
        weights = {"dense": settings.dense_weight, "bm25": settings.sparse_weight}
        if settings.fusion == "convex":
            fused = convex_fusion(scored, weights)
        elif settings.fusion == "weighted":
            fused = weighted_fusion(scored, weights)
        else:
            fused = reciprocal_rank_fusion(
                [scored["dense"][1].tolist(), scored["bm25"][1].tolist()],
                k=settings.rrf_k,
                weights=[weights["dense"], weights["bm25"]],
            )
        return sorted(fused.items(), key=lambda item: (-item[1], item[0]))

    def passages(self, ranked: Ranked, k: int, question: str | None = None) -> list[Passage]:
        """The first ``k`` ranked rows as passages, skipping any that overlap a better one
        and joining touching ones near the top (``SearchSettings.join_depth``).

        With the ``question``, each passage also carries its best-answering sentence.
        """
        depth = self.settings.join_depth if self.settings.join_depth > 1 else 0
        picked = self._distinct(ranked, k + depth)
        runs = self._joined(picked[:depth]) + [_Run(row, row, row, s) for row, s in picked[depth:]]
        passages = [self._passage(run) for run in runs[:k]]
        return self._with_answers(question, runs[:k], passages)

    def _distinct(self, ranked: Ranked, count: int) -> Ranked:
        """The first ``count`` ranked rows whose text overlaps no better row's."""
        taken: dict[int, list[tuple[int, int]]] = {}
        picked: Ranked = []
        for row, score in ranked:
            chunk = self.state.chunks[row]
            spans = taken.setdefault(int(self.state.row_doc[row]), [])
            if any(chunk.start < end and start < chunk.end for start, end in spans):
                continue
            spans.append((chunk.start, chunk.end))
            picked.append((row, score))
            if len(picked) == count:
                break
        return picked

    def _joined(self, picked: Ranked) -> list[_Run]:
        """``picked`` as runs: each row, in rank order, takes in the later-ranked rows that
        touch its run while the run's text fits ``join_chars``."""
        used = [False] * len(picked)
        runs = []
        for i, (row, score) in enumerate(picked):
            if used[i]:
                continue
            first = last = row
            grown = True
            while grown:
                grown = False
                for j in range(i + 1, len(picked)):
                    other = picked[j][0]
                    if used[j]:
                        continue
                    if other == first - 1 and self._joinable(other, last):
                        first, used[j], grown = other, True, True
                    elif other == last + 1 and self._joinable(first, other):
                        last, used[j], grown = other, True, True
            runs.append(_Run(first, last, row, score))
        return runs

    def _joinable(self, first: int, last: int) -> bool:
        """Whether rows ``first..last`` can show as one passage: one document, each row
        on the page and in the section of the one before with nothing but whitespace
        between them, and the whole within ``join_chars``."""
        state = self.state
        if int(state.row_doc[first]) != int(state.row_doc[last]):
            return False
        chunks = state.chunks
        if chunks[last].end - chunks[first].start > self.settings.join_chars:
            return False
        text = state.document_of(first).text
        for a, b in itertools.pairwise(chunks[first : last + 1]):
            if a.page != b.page or a.section != b.section or b.start < a.end:
                return False
            if text[a.end : b.start].strip():
                return False
        return True

    def _passage(self, run: _Run) -> Passage:
        """The passage showing a run's rows (a chunk's text is its document's text from
        ``start`` to ``end``, so a run's is too), scored as its best row."""
        document = self.state.document_of(run.first)
        head, tail = self.state.chunks[run.first], self.state.chunks[run.last]
        start, end = head.start, tail.end
        confidence = document.ocr_confidence(start, end)
        return Passage(
            text=document.text[start:end],
            score=round(float(run.score), 6),
            source=document.source,
            title=document.title,
            page=head.page,
            section=head.section,
            start=start,
            end=end,
            ocr=confidence is not None,
            ocr_confidence=confidence,
        )

    def _with_answers(
        self,
        question: str | None,
        runs: Sequence[_Run],
        passages: list[Passage],
    ) -> list[Passage]:
        """Each passage with its best-answering sentence marked (``answer_start/end``):
        of a joined passage, the best sentence of its best-ranked row."""
        if question is None or not passages:
            return passages
        rows = [run.best for run in runs]
        measured = self.evidence.measure(
            question, rows, [self.state.chunks[row].text for row in rows]
        )
        out = []
        for passage, row, found in zip(passages, rows, measured, strict=True):
            offset = self.state.chunks[row].start
            out.append(
                replace(
                    passage,
                    answer_start=offset + found.answer_start,
                    answer_end=offset + found.answer_end,
                )
            )
        return out

    def similarity(self, question: str, passages: Sequence[Passage]) -> list[float]:
        """Cosine similarity between the question and each passage (-1..1): of a joined
        passage, the highest among its rows.

        Fusion scores only order results; this absolute figure lets a caller say when
        even the best passage is a weak match. A passage not in the index scores 0.
        """
        if not passages:
            return []
        vector = self.query_vector(clean_question(question))
        chunks = self.state.chunks
        out = []
        for passage in passages:
            rows = [
                row
                for row in self.state.rows_of([passage.source]).tolist()
                if passage.start <= chunks[row].start and chunks[row].end <= passage.end
            ]
            out.append(max((float(self.state.vectors[row] @ vector) for row in rows), default=0.0))
        return out
