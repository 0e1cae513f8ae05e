"""Keyword search: BM25 (bm25s) over stemmed, stop-worded tokens."""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tpd_qa.errors import IndexCorruptError
from tpd_qa.text import CJK_CHARACTER, text_key

__all__ = ["SparseSettings", "SparseIndex", "analyse", "has_cjk", "keyword_keys", "keywords"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SparseSettings:
    """BM25 variant and parameters, plus the text analysis used for keys and queries."""

    method: str = "lucene"
    k1: float = 1.2
    b: float = 0.75
    stemmer: str | None = "english"
    stopwords: str | None = "en"
    cjk_bigrams: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SparseIndex:
    """A BM25 index whose document ids are row numbers 0..n-1."""

    def __init__(self, retriever: Any, settings: SparseSettings, size: int) -> None:
        self._retriever = retriever
        self.settings = settings
        self.size = size
        self._stemmer = _stemmer(settings.stemmer)
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        self._tokens = _Tokens()  # empty for a loaded index: nothing analysed here yet

    def analyse(self, texts: Sequence[str]) -> list[list[str]]:
        """Tokens as the index sees them (lower-cased, stop words removed, stemmed)."""
        return analyse(texts, self.settings, self._stemmer)

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        settings: SparseSettings | None = None,
        previous: SparseIndex | None = None,
    ) -> SparseIndex:
        """Index ``texts``; row ``i`` of the index is ``texts[i]``.

        With ``previous`` (an index built in this process with the same settings), texts it
        already analysed are not analysed again: its tokens are reused (BM25 itself must be
        recomputed, since every row's score depends on the whole collection). The scores
        are those of a fresh build.
        """
        bm25s = _bm25s()
        settings = settings or SparseSettings()
        retriever = bm25s.BM25(method=settings.method, k1=settings.k1, b=settings.b)
        index = cls(retriever, settings, len(texts))
        reusable = previous is not None and previous.settings == settings
        known = previous._tokens if previous is not None and reusable else _Tokens()
        index._tokens, ids = known.extended(texts, index.analyse)
        # bm25s cannot index an empty corpus or empty documents' vocabulary; pad with a token
        # that analysis never produces so that every row exists.
        retriever.index(
            (ids or [[index._tokens.pad]], dict(index._tokens.vocabulary)), show_progress=False
        )
        return index

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for ``query`` (zeros when no query term is indexed)."""
        if self.size == 0:
            return np.zeros(0, dtype=np.float32)
        tokens = self.analyse([query])[0]
        ids = self._retriever.get_tokens_ids(tokens)
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        scores = self._retriever.get_scores_from_ids(ids)
        return np.asarray(scores[: self.size], dtype=np.float32)

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) with a positive score; ``allowed`` restricts to those ids."""
        scores = self.scores(query)
        if allowed is not None:
            mask = np.zeros_like(scores, dtype=bool)
            mask[allowed] = True
            scores = np.where(mask, scores, 0.0)
        positive = np.flatnonzero(scores > 0)
        if len(positive) > k:
            top = np.argpartition(-scores[positive], k - 1)[:k]
            positive = positive[top]
        order = positive[np.argsort(-scores[positive], kind="stable")]
        return scores[order], order.astype(np.int64)

    def idf(self, keys: Sequence[str]) -> np.ndarray:
        """Inverse document frequency of each analysed key (BM25's formula).

        A key no row holds gets the highest value, as the rarest possible word.
        """
        vocabulary: dict[str, int] = self._retriever.vocab_dict
        starts = self._retriever.scores["indptr"]
        rows = max(self.size, 1)
        frequencies = np.array(
            [
                0 if (token := vocabulary.get(key)) is None else starts[token + 1] - starts[token]
                for key in keys
            ],
            dtype=np.float64,
        )
        return np.log1p((rows - frequencies + 0.5) / (frequencies + 0.5))

    def holding(self, keys: Sequence[str], starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Which row ranges hold which keys: ``out[i, j]`` is True when a row in
        ``starts[j]`` .. ``ends[j] - 1`` holds the analysed key ``keys[i]``.

        A document's rows are such a range, so this tells which of a question's words a
        document holds anywhere, from the postings alone (two binary searches per key
        and range, however long the documents).
        """
        vocabulary: dict[str, int] = self._retriever.vocab_dict
        postings, starts_of = self._postings()
        out = np.zeros((len(keys), len(starts)), dtype=bool)
        for i, key in enumerate(keys):
            token = vocabulary.get(key)
            if token is None:
                continue
            rows = postings[starts_of[token] : starts_of[token + 1]]
            out[i] = np.searchsorted(rows, starts) < np.searchsorted(rows, ends)
        return out

    def _postings(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows holding each token, ascending within each token, and where each
        token's rows start (bm25s stores them so; checked once, sorted if not)."""
        if self._sorted is None:
            scores = self._retriever.scores
            rows, starts = np.asarray(scores["indices"]), np.asarray(scores["indptr"])
            drops = np.flatnonzero(np.diff(rows) < 0) + 1
            if not np.isin(drops, starts).all():  # a token's rows out of order
                tokens = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
                rows = rows[np.lexsort((rows, tokens))]
            self._sorted = (rows, starts)
        return self._sorted

    def memory_bytes(self) -> int:
        """Bytes the BM25 score matrices take."""
        scores = self._retriever.scores
        return sum(int(v.nbytes) for v in scores.values() if isinstance(v, np.ndarray))

    def save(self, directory: Path) -> None:
        """Write the BM25 matrices and vocabulary as .npy/.json (never pickle), and the
        analysed texts' token ids, which the next rebuild after ``load`` reuses."""
        self._retriever.save(str(directory), corpus=None, allow_pickle=False)
        self._tokens.save(directory)

    @classmethod
    def load(cls, directory: Path, settings: SparseSettings, size: int) -> SparseIndex:
        """Read an index written by ``save``; ``size`` is checked against the stored rows."""
        bm25s = _bm25s()
        try:
            retriever = bm25s.BM25.load(
                str(directory), load_corpus=False, allow_pickle=False, show_progress=False
            )
        except Exception as exc:
            raise IndexCorruptError(f"cannot read keyword index: {exc}") from exc
        stored = int(retriever.scores.get("num_docs", -1))
        if stored != max(size, 1):
            raise IndexCorruptError(f"keyword index has {stored} rows, expected {size}")
        index = cls(retriever, settings, size)
        index._tokens = _Tokens.load(directory, retriever.vocab_dict)
        return index


_DIGEST = len(text_key(""))  # bytes of a text's digest


class _Tokens:
    """Analysed texts as token ids (keyed by a digest of the text; 4 bytes a token, saved
    with the index), and the vocabulary of those ids: what a rebuild reuses instead of
    analysing the same text again. Never changed once built; ``extended`` returns a new
    one holding exactly the given texts (the vocabulary keeps every token seen, which
    costs an unused BM25 column per token of a removed text)."""

    PAD = "\x00"

    def __init__(
        self,
        vocabulary: dict[str, int] | None = None,
        rows: dict[bytes, np.ndarray] | None = None,
    ) -> None:
        self.vocabulary: dict[str, int] = vocabulary if vocabulary is not None else {}
        self.rows: dict[bytes, np.ndarray] = rows if rows is not None else {}

    #: Files of ``save``: every text's token ids end to end, where each text's ids start
    #: (one more than texts), and each text's 16-byte digest, in the same order.
    FILES = ("tokens.ids.npy", "tokens.offsets.npy", "tokens.digests.npy")

    def save(self, directory: Path) -> None:
        keys = list(self.rows)
        offsets = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum([len(self.rows[key]) for key in keys], out=offsets[1:])
        ids = np.concatenate([self.rows[key] for key in keys]) if keys else np.zeros(0, np.int32)
        digests = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), _DIGEST)
        for name, array in zip(self.FILES, (ids, offsets, digests), strict=True):
            with open(directory / name, "wb") as handle:
                np.save(handle, array, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path, stored_vocabulary: dict[str, int]) -> _Tokens:
        """What ``save`` wrote, with the vocabulary the BM25 matrices were saved with;
        nothing (every text analysed again at the next rebuild) when the files are absent,
        as in an index saved before they existed, or do not fit together."""
        paths = [directory / name for name in cls.FILES]
        if not all(path.is_file() for path in paths):
            return cls()
        try:
            ids, offsets, digests = (np.load(path, allow_pickle=False) for path in paths)
        except (OSError, ValueError) as exc:
            log.warning("token ids of the keyword index unreadable (%s): not reused", exc)
            return cls()
        vocabulary = {token: int(i) for token, i in stored_vocabulary.items() if token != ""}
        fits = (
            ids.dtype == np.int32
            and ids.ndim == offsets.ndim == 1
            and digests.shape == (len(offsets) - 1, _DIGEST)
            and len(offsets) > 0
            and offsets[0] == 0
            and offsets[-1] == len(ids)
            and bool(np.all(np.diff(offsets) > 0))
            and (len(ids) == 0 or 0 <= int(ids.min()) <= int(ids.max()) < len(vocabulary))
            and cls.PAD in vocabulary
            # ids 0..V-1, each once: new tokens are numbered from V on
            and np.array_equal(
                np.sort(np.fromiter(vocabulary.values(), np.int64, len(vocabulary))),
                np.arange(len(vocabulary)),
            )
        )
        if not fits:
            log.warning("token ids of the keyword index do not fit its vocabulary: not reused")
            return cls()
        rows = {digests[i].tobytes(): ids[offsets[i] : offsets[i + 1]] for i in range(len(digests))}
        return cls(vocabulary, rows)

    @property
    def pad(self) -> int:
        return self.vocabulary[self.PAD]

    def extended(
        self, texts: Sequence[str], analyse: Callable[[Sequence[str]], list[list[str]]]
    ) -> tuple[_Tokens, list[list[int]]]:
        """The tokens of exactly ``texts`` (analysing those not held here), and each text's
        ids in order (an empty text's: the pad token)."""
        vocabulary = dict(self.vocabulary)
        vocabulary.setdefault(self.PAD, len(vocabulary))
        keys = [text_key(text) for text in texts]
        rows = {key: self.rows[key] for key in keys if key in self.rows}
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in rows}
        analysed = analyse(list(missing.values())) if missing else []
        for key, tokens in zip(missing, analysed, strict=True):
            ids = [vocabulary.setdefault(token, len(vocabulary)) for token in tokens]
            rows[key] = np.array(ids or [vocabulary[self.PAD]], dtype=np.int32)
        return _Tokens(vocabulary, rows), [rows[key].tolist() for key in keys]


def analyse(
    texts: Sequence[str], settings: SparseSettings, stemmer: Any | None = None
) -> list[list[str]]:
    """Tokens of each text as a BM25 index with ``settings`` sees them (lower-cased, stop
    words removed, stemmed; CJK runs as character pairs). Another BM25 engine fed these
    tokens (e.g. Milvus's, split at whitespace) scores as this module does."""
    bm25s = _bm25s()
    if settings.cjk_bigrams:
        texts = [_CJK_RUN.sub(_bigrams, text) for text in texts]
    tokens: list[list[str]] = bm25s.tokenize(
        list(texts),
        stopwords=settings.stopwords,
        stemmer=stemmer if stemmer is not None else _thread_stemmer(settings.stemmer),
        return_ids=False,
        show_progress=False,
    )
    return tokens


# Han, Hiragana, Katakana and Hangul are written without spaces between words: index
# overlapping character pairs so that any word of two or more characters can match.
_CJK_RUN = re.compile(CJK_CHARACTER + "{2,}")


def _bigrams(match: re.Match[str]) -> str:
    run = match.group()
    return " " + " ".join(run[i : i + 2] for i in range(len(run) - 1)) + " "


@functools.cache  # setLevel clears every logger's cache: once, not once per query
def _bm25s() -> Any:
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import
    return bm25s


def _stemmer(language: str | None) -> Any:
    if not language:
        return None
    import Stemmer

    return Stemmer.Stemmer(language)


# bm25s splits text into tokens of two or more word characters (scikit-learn's pattern).
_TOKEN = re.compile(r"\b\w\w+\b")
_local = threading.local()  # a Stemmer must not be used by two threads at once


def _thread_stemmer(language: str | None) -> Any:
    """This thread's stemmer for ``language`` (made once per thread)."""
    cache: dict[str | None, Any] = _local.__dict__.setdefault("stemmers", {})
    if language not in cache:
        cache[language] = _stemmer(language)
    return cache[language]


def keywords(text: str) -> list[tuple[int, int, str]]:
    """The words of ``text`` the keyword index keys, as (start, end, key), in text order.

    The index's own analysis (default settings): tokens of two or more word characters,
    lower-cased, English stop words dropped, PyStemmer English stems; so "Cables" and
    "cable" share the key "cabl" here exactly as they do in BM25.
    """
    settings = SparseSettings()
    stop = _stopwords(settings.stopwords)
    # CJK runs become overlapping character pairs, as the index keys them (cjk_bigrams)
    spaced = _CJK_RUN.sub(lambda m: " " * len(m.group()), text)
    pairs = [
        (m.start() + i, m.start() + i + 2, m.group()[i : i + 2])
        for m in _CJK_RUN.finditer(text)
        for i in range(len(m.group()) - 1)
    ]
    found = [(m.start(), m.end(), m.group().lower()) for m in _TOKEN.finditer(spaced)]
    found = [(start, end, word) for start, end, word in found if word not in stop]
    if not hasattr(_local, "stemmer"):
        _local.stemmer = _stemmer(settings.stemmer)
    if _local.stemmer is not None and found:
        keys = _local.stemmer.stemWords([word for _start, _end, word in found])
        found = [(start, end, key) for (start, end, _word), key in zip(found, keys, strict=True)]
    return sorted(found + pairs) if pairs else found


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a run of CJK characters (which keyword analysis splits in pairs)."""
    return _CJK_RUN.search(text) is not None


def keyword_keys(texts: Sequence[str]) -> list[list[str]]:
    """The keys of each text, in order: ``[key for *_, key in keywords(text)]``, faster.

    For texts without CJK runs (:func:`has_cjk`) only: it skips the offsets, which is what
    costs (one match object per word); the analysis is :func:`keywords`'s.
    """
    settings = SparseSettings()
    stop = _stopwords(settings.stopwords)
    # words hold no "\n", and lower-casing never makes one: one call lower-cases them all
    words = [_TOKEN.findall(text) for text in texts]
    lowered = "\n".join("\n".join(w) for w in words if w).lower().split("\n")
    kept: list[list[str]] = []
    position = 0
    for found in words:
        chunk = lowered[position : position + len(found)]
        position += len(found)
        kept.append([word for word in chunk if word not in stop])
    if not hasattr(_local, "stemmer"):
        _local.stemmer = _stemmer(settings.stemmer)
    if _local.stemmer is None:
        return kept
    stems = _STEMS[0]  # this call's dict: only ever added to, so every word stays in it
    new = list({word for words_ in kept for word in words_ if word not in stems})
    if new:
        if len(stems) + len(new) > _STEMS_SIZE:
            stems = _STEMS[0] = {}  # a fresh one; calls still using the old one keep it
        stems.update(zip(new, _local.stemmer.stemWords(new), strict=True))
    return [[stems[word] for word in words_] for words_ in kept]


#: Word -> stem, shared by threads (a dict update is atomic), replaced when it grows large.
_STEMS: list[dict[str, str]] = [{}]
_STEMS_SIZE = 200_000


@functools.cache
def _stopwords(name: str | None) -> frozenset[str]:
    from bm25s.tokenization import _infer_stopwords  # the list bm25s.tokenize uses

    return frozenset(_infer_stopwords(name)) if name else frozenset()
