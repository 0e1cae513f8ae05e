"""Second-stage evidence: how well a candidate passage, and its best sentence, cover a question.

The first stage (dense vectors and BM25) finds candidates; a passage that answers often
does so in one sentence that holds most of the question's rarer words, while a passage
that merely shares the topic spreads them thin. For each candidate this module measures:

* ``coverage``: the share of the question's keyword weight (IDF) found in the passage;
* ``sentence``: the same share within the passage's best sentence — that sentence is
  also the passage's *answer span*;
* ``bigram``: the share of the question's adjacent keyword pairs found adjacent in the
  passage (a phrase/proximity signal);
* ``sentence_cosine`` (measured by the searcher, from the index's sentence vectors): the
  cosine between the question and the passage's best sentence embedded on its own;
* ``document``: the share of the question's keyword weight found anywhere in the
  passage's document (its title and whole text). A claim's words are often spread over
  an abstract rather than gathered in one passage; of two passages that match alike, the
  one whose document holds the claim's other words as well is likelier the evidence.

Keywords are BM25's own (same tokens, stop words and stemmer: :func:`sparse.keywords`),
so the evidence agrees with what keyword search matched. The weights that combine the
features with the first-stage scores live in ``data/evidence.json`` (plain JSON, chosen
on training questions only: bench/README.md, "Wikipedia QA").
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final, Literal

import numpy as np

from tpd_qa.sparse import has_cjk, keyword_keys, keywords
from tpd_qa.text import CJK_CHARACTER, answering, sentence_spans

__all__ = [
    "FEATURES",
    "Evidence",
    "EvidenceWeights",
    "PassageEvidence",
    "QueryKind",
    "default_weights",
    "idf_of_texts",
    "mostly_cjk",
    "query_kind",
]

#: Features in the order weights are given: first-stage scores, then keyword evidence,
#: then the cosine of the passage's best sentence (:mod:`tpd_qa.sentences`), then the
#: keyword coverage of the passage's whole document.
FEATURES: Final = (
    "dense",
    "bm25",
    "coverage",
    "sentence",
    "bigram",
    "sentence_cosine",
    "document",
)

#: A question ("Who signed …?"), a statement or keywords ("fusion magnets JT-60SA"), or
#: text written mostly in Chinese or Japanese characters ("cjk"), which the bundled
#: English-only model cannot embed meaningfully.
QueryKind = Literal["question", "statement", "cjk"]
#: Share of a question's letters in CJK scripts from which it counts as "cjk" (measured:
#: Japanese questions 0.73 and more, English ones 0).
CJK_SHARE = 0.3
_CJK = re.compile(CJK_CHARACTER)
_LETTER = re.compile(r"[^\W\d_]")  # a letter (or a number sign such as ①), one per match

_QUESTION_START = re.compile(
    r"^\s*(?:who|whom|whose|what|which|when|where|why|how|is|are|was|were|do|does|did|"
    r"can|could|will|would|should|has|have|had|in what|on what|at what|to what|from what)\b",
    re.IGNORECASE,
)


#: Words that ask rather than say what is asked about: not evidence (BM25 keeps them,
#: and in prose they are rare enough to look important).
_QUESTION_WORDS: Final = frozenset(
    {"who", "whom", "whose", "what", "which", "when", "where", "why", "how"}
)


def mostly_cjk(text: str) -> bool:
    """Whether ``text`` is written mostly in CJK scripts (:data:`CJK_SHARE` of its letters)."""
    if _CJK.search(text) is None:  # most text: no regex pass over every letter
        return False
    letters = len(_LETTER.findall(text))
    return letters > 0 and len(_CJK.findall(text)) / letters >= CJK_SHARE


def query_kind(question: str) -> QueryKind:
    """``cjk`` for text mostly in CJK scripts; else ``question`` when the text asks (a
    question mark, or a question word first); else ``statement``."""
    if mostly_cjk(question):
        return "cjk"
    if question.rstrip().endswith(("?", "？")) or _QUESTION_START.match(question):
        return "question"
    return "statement"


@dataclass(frozen=True, slots=True)
class EvidenceWeights:
    """Linear weights of :data:`FEATURES`, one set per query kind."""

    question: tuple[float, ...]
    statement: tuple[float, ...]
    #: For CJK-script text: keywords alone by default (the bundled model is English-only;
    #: with a multilingual model, give the dense score weight here).
    cjk: tuple[float, ...] = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    #: The best fused candidates that the second stage re-scores (the rest follow them).
    depth: int = 10
    #: How much the cosine counts when one of question and passage is mostly CJK and the
    #: other is not. The bundled model is English-only: it embeds every Japanese text
    #: near every other, so an English question finds Japanese passages "similar" (cosine
    #: 0.34 against 0.16 for the English passage that answers). The shipped weights count
    #: such a cosine half: at 1 Japanese passages outranked English answers, at 0 a
    #: Japanese passage that answers by shared keywords (JT-60SA) fell behind English ones.
    #: With a multilingual model, set it to 1.
    cross_script: float = 0.5
    #: How much keyword overlap makes keyword evidence trustworthy: when the best of the
    #: ``depth`` candidates holds less than this share of the question's keyword weight
    #: (its ``coverage``), the keyword features (``bm25``, ``coverage``, ``sentence``,
    #: ``bigram``) count only in proportion. A question that paraphrases its answer shares
    #: few rare words with any passage, and the ones it does share (a place name,
    #: "memorandum") then pick passages at random; the cosines know better. It applies to
    #: a kind that weighs both evidence and a cosine (questions: claims and CJK text
    #: measure no evidence). 0 counts them in full always.
    keyword_trust: float = 0.0

    def __post_init__(self) -> None:
        for kind in (self.question, self.statement, self.cjk):
            if len(kind) != len(FEATURES):
                raise ValueError(f"need {len(FEATURES)} weights ({', '.join(FEATURES)})")
        if self.depth < 1:
            raise ValueError("depth must be >= 1")
        if not 0.0 <= self.cross_script <= 1.0:
            raise ValueError("cross_script must be between 0 and 1")
        if not 0.0 <= self.keyword_trust <= 1.0:
            raise ValueError("keyword_trust must be between 0 and 1")

    def for_kind(self, kind: QueryKind) -> np.ndarray:
        return np.asarray(getattr(self, kind), dtype=np.float64)

    @classmethod
    def from_json(cls, text: str) -> EvidenceWeights:
        data = json.loads(text)
        return cls(
            question=tuple(float(data["question"][name]) for name in FEATURES),
            statement=tuple(float(data["statement"][name]) for name in FEATURES),
            cjk=tuple(float(data["cjk"][name]) for name in FEATURES),
            depth=int(data.get("depth", 10)),
            cross_script=float(data.get("cross_script", 0.5)),
            keyword_trust=float(data.get("keyword_trust", 0.0)),
        )


def idf_of_texts(texts: Sequence[str]) -> Callable[[Sequence[str]], np.ndarray]:
    """BM25's inverse document frequency over ``texts`` (for indexes whose keyword search
    lives elsewhere, e.g. in Milvus): same keys, same formula as ``SparseIndex.idf``."""
    frequencies: dict[str, int] = {}
    for text in texts:
        for key in {key for _start, _end, key in keywords(text)}:
            frequencies[key] = frequencies.get(key, 0) + 1
    rows = max(len(texts), 1)

    def idf(keys: Sequence[str]) -> np.ndarray:
        found = np.array([frequencies.get(key, 0) for key in keys], dtype=np.float64)
        return np.log1p((rows - found + 0.5) / (found + 0.5))

    return idf


def default_weights() -> EvidenceWeights:
    """The shipped weights (``tpd_qa/data/evidence.json``)."""
    text = resources.files("tpd_qa").joinpath("data/evidence.json").read_text(encoding="utf-8")
    return EvidenceWeights.from_json(text)


@dataclass(frozen=True, slots=True)
class PassageEvidence:
    """The evidence features of one passage and its best sentence (offsets in the passage)."""

    coverage: float
    sentence: float
    bigram: float
    answer_start: int
    answer_end: int


@dataclass(frozen=True, slots=True)
class _Analysed:
    """A passage's keys (in order, as a set, and adjacent pairs) and its sentences' keys."""

    keys: tuple[str, ...]
    sentences: tuple[tuple[int, int, frozenset[str]], ...]
    present: frozenset[str]
    adjacent: frozenset[tuple[str, str]]

    @classmethod
    def of(
        cls, keys: Sequence[str], sentences: Sequence[tuple[int, int, frozenset[str]]]
    ) -> _Analysed:
        return cls(
            tuple(keys), tuple(sentences), frozenset(keys), frozenset(itertools.pairwise(keys))
        )


class Evidence:
    """Measures evidence for candidate passages; keyword analysis of passages is cached.

    ``idf`` maps keys to their inverse document frequency in the collection (unknown
    keys get the highest weight: a word no passage has is the most telling).
    """

    def __init__(self, idf: Callable[[Sequence[str]], np.ndarray], cache_size: int = 20_000):
        self._idf = idf
        self._cache: OrderedDict[int, _Analysed] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._scripts: dict[int, bool] = {}
        self._documents: OrderedDict[int, frozenset[str]] = OrderedDict()

    def cjk_rows(self, rows: Sequence[int], texts: Sequence[str]) -> np.ndarray:
        """Which passages are written mostly in CJK scripts (:func:`mostly_cjk`), cached
        per row."""
        scripts = self._scripts
        out = np.empty(len(rows), dtype=bool)
        for i, (row, text) in enumerate(zip(rows, texts, strict=True)):
            found = scripts.get(row)
            if found is None:
                found = scripts[row] = mostly_cjk(text)  # a dict write is atomic
            out[i] = found
        return out

    def _weighted(self, question: str) -> tuple[list[tuple[str, float]], float]:
        """The question's distinct keys with their IDF weights, and the weights' sum."""
        query_keys = list(
            dict.fromkeys(
                key for _start, _end, key in keywords(question) if key not in _QUESTION_WORDS
            )
        )
        weights = self._idf(query_keys) if query_keys else np.zeros(0)
        return list(zip(query_keys, weights.tolist(), strict=True)), float(weights.sum())

    def documents(self, question: str, holds: Callable[[Sequence[str]], np.ndarray]) -> np.ndarray:
        """The ``document`` feature of some documents: the share of the question's keyword
        weight each holds anywhere. ``holds(keys)`` says which document holds which key,
        as a boolean (keys × documents) matrix."""
        weighted, total = self._weighted(question)
        held = np.asarray(holds([key for key, _weight in weighted]), dtype=np.float64)
        if total <= 0:
            return np.zeros(held.shape[1], dtype=np.float64)
        share: np.ndarray = np.asarray([w for _key, w in weighted]) @ held / total
        return share

    def document_keys(self, number: int, texts: Callable[[], Sequence[str]]) -> frozenset[str]:
        """The keys of document ``number`` (whose rows' texts ``texts()`` gives), cached:
        for indexes whose keyword postings live elsewhere."""
        with self._lock:
            keys = self._documents.get(number)
            if keys is not None:
                self._documents.move_to_end(number)
                return keys
        keys = frozenset(itertools.chain.from_iterable(analyse_keys(t) for t in texts()))
        with self._lock:
            self._documents[number] = keys
            if len(self._documents) > self._cache_size:
                self._documents.popitem(last=False)
        return keys

    def measure(
        self, question: str, rows: Sequence[int], texts: Sequence[str]
    ) -> list[PassageEvidence]:
        """Evidence for each candidate (``rows`` identify passages for the cache)."""
        weighted, total = self._weighted(question)
        query_keys = [key for key, _weight in weighted]
        pairs = frozenset(itertools.pairwise(query_keys))
        out: list[PassageEvidence] = []
        for row, text in zip(rows, texts, strict=True):
            analysed = self._analysed(row, text)
            if total <= 0:
                first = analysed.sentences[0] if analysed.sentences else (0, len(text), None)
                out.append(PassageEvidence(0.0, 0.0, 0.0, first[0], first[1]))
                continue
            present = analysed.present
            # sums in query-key order, as before, so the floats are bit-identical
            coverage = sum(w for k, w in weighted if k in present)
            best, best_span = -1.0, (0, len(text))
            for start, end, keys in analysed.sentences:
                value = sum(w for k, w in weighted if k in keys)
                if value > best:
                    best, best_span = value, (start, end)
            bigram = len(pairs & analysed.adjacent) / len(pairs) if pairs else 0.0
            out.append(
                PassageEvidence(
                    coverage / total, max(best, 0.0) / total, bigram, best_span[0], best_span[1]
                )
            )
        return out

    def _analysed(self, row: int, text: str) -> _Analysed:
        with self._lock:
            cached = self._cache.get(row)
            if cached is not None:
                self._cache.move_to_end(row)
                return cached
        analysed = analyse(text)
        with self._lock:
            self._cache[row] = analysed
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return analysed

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._scripts.clear()
            self._documents.clear()


def analyse_keys(text: str) -> list[str]:
    """The keys of ``text`` in order, as keyword search sees them."""
    if not has_cjk(text):
        return keyword_keys([text])[0]
    return [key for _start, _end, key in keywords(text)]


def analyse(text: str) -> _Analysed:
    """The keys of ``text`` and of each of its sentences.

    Sentences never split a word (they end at punctuation), and together they hold every
    word of the text, so each sentence's keys are those of its own text, and the passage's
    keys are theirs in order. Text with CJK runs (keyed in overlapping pairs, sorted by
    position with the words) takes the general path through the keywords' offsets.
    """
    spans = sentence_spans(text) or [(0, len(text))]
    # a Markdown heading line names a section: its words count for the passage, but it is
    # never the answering sentence (unless the passage is nothing else)
    answerable = answering(text, spans)
    if not has_cjk(text):
        per_sentence = keyword_keys([text[start:end] for start, end in spans])
        return _Analysed.of(
            list(itertools.chain.from_iterable(per_sentence)),
            [
                (start, end, frozenset(keys))
                for (start, end), keys, ok in zip(spans, per_sentence, answerable, strict=True)
                if ok
            ],
        )
    found = keywords(text)
    sentences = [
        (start, end, frozenset(key for s, e, key in found if s >= start and e <= end))
        for (start, end), ok in zip(spans, answerable, strict=True)
        if ok
    ]
    return _Analysed.of([key for _s, _e, key in found], sentences)
