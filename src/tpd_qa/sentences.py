"""Sentence vectors: each answering sentence of each passage, embedded on its own.

A passage that answers a question in one sentence and speaks of other things in the
rest has a cosine to the question diluted by the rest. The second stage therefore also
scores a candidate by the cosine of its best sentence (:mod:`tpd_qa.evidence`, feature
``sentence_cosine``). On SQuAD train, 4-fold cross-validated by article, this lifted
hit@1 from 0.8385 to 0.8516 (bench/README.md, "Sentence vectors").

The store is content-addressed: a sentence is kept once under :func:`text_key` of its
text, whichever passages hold it (passages that overlap share their sentences), and a
sentence already stored is never embedded again, on any later update. Which sentences a
passage has is :func:`tpd_qa.text.answer_spans` — the same rule that marks a passage's
answer — and the store remembers it: chunk row ``r``'s sentences are store rows
``index[offsets[r]:offsets[r + 1]]``, so neither a search nor an update splits a stored
passage into sentences again. Vectors are stored as float16 (normalised vectors lose under
1e-3 of cosine), keys as 16-byte digests: ``sentence_keys.npy``,
``sentence_vectors.npy``, ``sentence_offsets.npy`` and ``sentence_index.npy``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from tpd_qa.text import answer_spans, text_key

__all__ = ["KEY_BYTES", "SentenceVectors", "chunk_sentences", "sentences_of"]

#: Bytes of a sentence key (:func:`tpd_qa.text.text_key`).
KEY_BYTES = 16
_FILES = ("keys", "vectors", "offsets", "index")


def sentences_of(text: str) -> list[str]:
    """The texts of a passage's answering sentences, in order."""
    return [text[start:end] for start, end in answer_spans(text)]


class SentenceVectors:
    """Sentence keys (``n`` × 16 bytes), their unit vectors (``n`` × dimension, float16),
    and which of them each chunk row holds (``offsets``: rows + 1 ascending positions into
    ``index``, whose entries are sentence rows)."""

    def __init__(
        self, keys: np.ndarray, vectors: np.ndarray, offsets: np.ndarray, index: np.ndarray
    ) -> None:
        if keys.ndim != 2 or keys.shape[1] != KEY_BYTES or keys.dtype != np.uint8:
            raise ValueError(f"sentence keys must be (n, {KEY_BYTES}) uint8, got {keys.shape}")
        if vectors.ndim != 2 or len(vectors) != len(keys):
            raise ValueError(f"{len(keys)} sentence keys but vectors of shape {vectors.shape}")
        offsets = np.asarray(offsets, dtype=np.int64)
        index = np.asarray(index, dtype=np.int64)
        if (
            offsets.ndim != 1
            or len(offsets) == 0
            or offsets[0] != 0
            or offsets[-1] != len(index)
            or (np.diff(offsets) < 0).any()
        ):
            raise ValueError("sentence offsets must rise from 0 to the index's length")
        if len(index) and (index.min() < 0 or index.max() >= len(keys)):
            raise ValueError("sentence index refers to a sentence the store does not hold")
        self.keys = keys
        self.vectors = np.asarray(vectors, dtype=np.float16)
        self.offsets = offsets
        self.index = index
        self._rows: dict[bytes, int] | None = None

    @classmethod
    def empty(cls, dimension: int) -> SentenceVectors:
        return cls(
            np.zeros((0, KEY_BYTES), np.uint8),
            np.zeros((0, dimension), np.float16),
            np.zeros(1, np.int64),
            np.zeros(0, np.int64),
        )

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def chunk_rows(self) -> int:
        """How many chunk rows the store maps."""
        return len(self.offsets) - 1

    @property
    def rows(self) -> dict[bytes, int]:
        """Key -> sentence row (built on first use)."""
        if self._rows is None:
            self._rows = {key.tobytes(): row for row, key in enumerate(self.keys)}
        return self._rows

    def of_row(self, row: int) -> np.ndarray:
        """The sentence rows of chunk row ``row``."""
        return self.index[self.offsets[row] : self.offsets[row + 1]]

    def keys_of_row(self, row: int) -> list[bytes]:
        """The keys of chunk row ``row``'s sentences, in order."""
        return [self.keys[sentence].tobytes() for sentence in self.of_row(row)]

    def rows_of(self, sentences: Iterable[str]) -> np.ndarray:
        """The rows of those ``sentences`` that are stored (unknown ones are left out)."""
        rows = self.rows
        found = (rows.get(text_key(sentence)) for sentence in sentences)
        return np.fromiter((row for row in found if row is not None), dtype=np.int64)

    def best_cosine(self, vector: np.ndarray, rows: np.ndarray) -> float | None:
        """The highest cosine between ``vector`` and the sentences at ``rows`` (None: none)."""
        if len(rows) == 0:
            return None
        return float((self.vectors[rows].astype(np.float32) @ vector).max())

    def updated(
        self,
        chunk_keys: Sequence[Sequence[bytes]],
        texts: Mapping[bytes, str],
        embed: Callable[[Sequence[str]], np.ndarray],
    ) -> tuple[SentenceVectors, int]:
        """The store for chunk rows holding the sentences ``chunk_keys`` (row by row).

        Stored sentences keep their vectors; the others are embedded (one call of
        ``embed``, each distinct text once; ``texts`` gives the text of every key not
        stored); sentences no chunk holds any more are dropped. Returns the store and how
        many texts were embedded.
        """
        rows = self.rows
        order: dict[bytes, int] = {}  # key -> row in the new store
        index: list[int] = []
        offsets = [0]
        for row_keys in chunk_keys:
            for key in row_keys:
                index.append(order.setdefault(key, len(order)))
            offsets.append(len(index))
        new = [key for key in order if key not in rows]
        kept = [rows[key] for key in order if key in rows]
        vectors = np.zeros((len(order), self.dimension), dtype=np.float16)
        stored = np.fromiter((key in rows for key in order), dtype=bool, count=len(order))
        vectors[stored] = self.vectors[kept]
        if new:
            embedded = np.asarray(embed([texts[key] for key in new]), dtype=np.float32)
            if embedded.shape != (len(new), self.dimension):
                raise ValueError(
                    f"embedder gave {embedded.shape} for {len(new)} sentences "
                    f"of dimension {self.dimension}"
                )
            vectors[~stored] = embedded.astype(np.float16)
        joined = b"".join(order)
        key_array = np.frombuffer(joined, np.uint8).reshape(-1, KEY_BYTES).copy()
        store = SentenceVectors(key_array, vectors, np.asarray(offsets), np.asarray(index))
        return store, len(new)

    def taken(self, chunk_rows: np.ndarray) -> SentenceVectors:
        """The same sentences mapped to new chunk rows: new row ``i`` holds old row
        ``chunk_rows[i]``'s sentences (e.g. replicas of rows in a benchmark)."""
        counts = np.diff(self.offsets)[chunk_rows]
        offsets = np.concatenate([[0], np.cumsum(counts)])
        index = (
            np.concatenate([self.of_row(int(row)) for row in chunk_rows])
            if len(chunk_rows)
            else np.zeros(0, np.int64)
        )
        return SentenceVectors(self.keys, self.vectors, offsets, index)

    def save(self, directory: Path) -> None:
        """Write the store's files into ``directory`` (which :meth:`load` reads back)."""
        for name, array in zip(
            _FILES, (self.keys, self.vectors, self.offsets, self.index), strict=True
        ):
            with open(directory / f"sentence_{name}.npy", "wb") as handle:
                np.save(handle, array, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> SentenceVectors | None:
        """The store saved in ``directory``, or None when it has none (an index built
        without sentence vectors). ValueError when the files disagree."""
        paths = [directory / f"sentence_{name}.npy" for name in _FILES]
        if not all(path.is_file() for path in paths):
            return None
        keys, vectors, offsets, index = (np.load(path, allow_pickle=False) for path in paths)
        return cls(keys, vectors, offsets, index)

    @staticmethod
    def files() -> tuple[str, ...]:
        """The file names a saved store consists of."""
        return tuple(f"sentence_{name}.npy" for name in _FILES)


def chunk_sentences(text: str) -> tuple[list[bytes], dict[bytes, str]]:
    """The keys of a passage's answering sentences, in order, and each key's text."""
    sentences = sentences_of(text)
    keys = [text_key(sentence) for sentence in sentences]
    return keys, dict(zip(keys, sentences, strict=True))
