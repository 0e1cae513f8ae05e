"""An optional third stage: a local cross-encoder re-scores the best hybrid candidates.

A cross-encoder reads the question and a passage together, so it judges relevance more
finely than vectors and keywords can, at the cost of one model pass per candidate.
tpd_qa ships none; a user who has a sentence-transformers ``CrossEncoder`` folder points
``TPD_QA_RERANKER`` at it (or passes it to ``retrieve`` / ``load_index``), and the
searcher re-scores its top ``SearchSettings.rerank_depth`` hybrid candidates with it.

Nothing here downloads: a path that is not an existing folder is refused before
sentence-transformers sees it (it would take a name for a Hugging Face Hub id), and the
model is loaded with ``local_files_only``. sentence-transformers is imported only when
a cross-encoder is loaded, so the index layer can depend on the :class:`Reranker`
protocol alone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np

from tpd_qa.errors import ConfigError

__all__ = [
    "RERANKER_ENV",
    "CrossEncoderReranker",
    "Reranker",
    "configured_reranker",
    "load_reranker",
]

#: The environment variable naming a local CrossEncoder folder (the one home of the name).
RERANKER_ENV: Final = "TPD_QA_RERANKER"

_loaded: dict[Path, CrossEncoderReranker] = {}
_lock = threading.Lock()


@runtime_checkable
class Reranker(Protocol):
    """Scores (question, passage) pairs: higher is more relevant; one score per text.

    ``name`` identifies the model (a folder path for a cross-encoder).
    """

    name: str

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """A float array of ``len(texts)`` relevance scores for ``question``."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` loaded from a local folder.

    Raises ConfigError (remedy ``choose_reranker``) when ``path`` is not a folder or holds
    no loadable cross-encoder. For models with several labels the last label's score is
    the relevance (the "relevant" class of binary classifiers).
    """

    def __init__(self, path: str | Path, *, batch_size: int = 16) -> None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            what = "does not exist" if not folder.exists() else "is not a folder"
            raise ConfigError(f"reranker {folder} {what}", remedy="choose_reranker")
        if not (folder / "config.json").is_file():
            raise ConfigError(
                f"reranker {folder} holds no model (no config.json)", remedy="choose_reranker"
            )
        self.name = str(folder.resolve())
        self.batch_size = batch_size
        self._model = _load_cross_encoder(folder)

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float64)
        scores = self._model.predict(
            [(question, text) for text in texts],
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        array = np.asarray(scores, dtype=np.float64)
        if array.ndim > 1:
            array = array[:, -1]
        return array.reshape(len(texts))


def _load_cross_encoder(folder: Path) -> Any:
    try:
        from sentence_transformers import CrossEncoder
    except ImportError as exc:  # pragma: no cover - a dependency of tpd_qa
        raise ConfigError("sentence-transformers is not installed") from exc
    try:
        return CrossEncoder(str(folder), local_files_only=True, device="cpu")
    except Exception as exc:  # any loader failure: a folder that is not a cross-encoder
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ConfigError(
            f"reranker {folder} could not be loaded as a CrossEncoder ({reason})",
            remedy="choose_reranker",
        ) from exc


def load_reranker(path: str | Path) -> CrossEncoderReranker:
    """The cross-encoder in ``path``, loaded once per process per folder."""
    key = Path(path).expanduser().resolve()
    with _lock:
        if key not in _loaded:
            _loaded[key] = CrossEncoderReranker(path)
        return _loaded[key]


def configured_reranker() -> CrossEncoderReranker | None:
    """The cross-encoder named by ``$TPD_QA_RERANKER``, or None when it is unset or empty."""
    path = os.environ.get(RERANKER_ENV, "").strip()
    return load_reranker(path) if path else None
