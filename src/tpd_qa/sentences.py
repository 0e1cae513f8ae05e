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
answer. Vectors are stored as float16 (normalised vectors lose under 1e-3 of cosine),
keys as 16-byte digests: ``sentence_keys.npy`` and ``sentence_vectors.npy``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from tpd_qa.text import answer_spans, text_key

__all__ = ["KEY_BYTES", "SentenceVectors", "sentences_of"]

#: Bytes of a sentence key (:func:`tpd_qa.text.text_key`).
KEY_BYTES = 16
_KEYS_FILE = "sentence_keys.npy"
_VECTORS_FILE = "sentence_vectors.npy"


def sentences_of(text: str) -> list[str]:
    """The texts of a passage's answering sentences, in order."""
    return [text[start:end] for start, end in answer_spans(text)]


class SentenceVectors:
    """Sentence keys (``n`` × 16 bytes) and their unit vectors (``n`` × dimension, float16)."""

    def __init__(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if keys.ndim != 2 or keys.shape[1] != KEY_BYTES or keys.dtype != np.uint8:
            raise ValueError(f"sentence keys must be (n, {KEY_BYTES}) uint8, got {keys.shape}")
        if vectors.ndim != 2 or len(vectors) != len(keys):
            raise ValueError(f"{len(keys)} sentence keys but vectors of shape {vectors.shape}")
        self.keys = keys
        self.vectors = np.asarray(vectors, dtype=np.float16)
        self._rows: dict[bytes, int] | None = None

    @classmethod
    def empty(cls, dimension: int) -> SentenceVectors:
        return cls(np.zeros((0, KEY_BYTES), np.uint8), np.zeros((0, dimension), np.float16))

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def rows(self) -> dict[bytes, int]:
        """Key -> row (built on first use)."""
        if self._rows is None:
            self._rows = {key.tobytes(): row for row, key in enumerate(self.keys)}
        return self._rows

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
        sentences: Iterable[str],
        embed: Callable[[Sequence[str]], np.ndarray],
    ) -> tuple[SentenceVectors, int]:
        """The store for exactly ``sentences``: stored ones keep their vectors, the others
        are embedded (one call of ``embed``, each distinct text once), and sentences no
        longer wanted are dropped. Returns the store and how many texts were embedded."""
        rows = self.rows
        wanted: dict[bytes, str] = {}
        for sentence in sentences:
            wanted.setdefault(text_key(sentence), sentence)
        kept = [rows[key] for key in wanted if key in rows]
        new = [(key, text) for key, text in wanted.items() if key not in rows]
        keys = [self.keys[kept]]
        vectors = [self.vectors[kept]]
        if new:
            embedded = np.asarray(embed([text for _key, text in new]), dtype=np.float32)
            if embedded.shape != (len(new), self.dimension):
                raise ValueError(
                    f"embedder gave {embedded.shape} for {len(new)} sentences "
                    f"of dimension {self.dimension}"
                )
            joined = b"".join(key for key, _text in new)
            keys.append(np.frombuffer(joined, np.uint8).reshape(-1, KEY_BYTES))
            vectors.append(embedded.astype(np.float16))
        store = SentenceVectors(np.concatenate(keys), np.concatenate(vectors))
        return store, len(new)

    def save(self, directory: Path) -> None:
        """Write the two files into ``directory`` (which :meth:`load` reads back)."""
        with open(directory / _KEYS_FILE, "wb") as handle:
            np.save(handle, self.keys, allow_pickle=False)
        with open(directory / _VECTORS_FILE, "wb") as handle:
            np.save(handle, self.vectors, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> SentenceVectors | None:
        """The store saved in ``directory``, or None when it has none (an index built
        before sentence vectors, or without them). ValueError when the files disagree."""
        if not (directory / _KEYS_FILE).is_file():
            return None
        keys = np.load(directory / _KEYS_FILE, allow_pickle=False)
        vectors = np.load(directory / _VECTORS_FILE, allow_pickle=False)
        return cls(keys, vectors)

    @staticmethod
    def files() -> tuple[str, str]:
        """The file names a saved store consists of."""
        return _KEYS_FILE, _VECTORS_FILE
