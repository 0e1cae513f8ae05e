"""ONNX Runtime copies of a mean-pooling sentence-transformers model, cached on disk.

The transformer plus mean pooling and L2 normalisation is exported once with
``torch.onnx.export`` from the weights already loaded (nothing is downloaded), kept as it
is (``onnx-float32``) and quantised with onnxruntime's own ``quantize_dynamic``
(``onnx-int8``: the MatMul weights in 8 bits with one scale per output channel,
activations quantised to 8 bits at run time), both under the cache folder in a
sub-folder named by a hash of the model's files and the library versions. Files are
written to a temporary name and renamed into place, so two processes exporting at once,
or one killed midway, never leave a half-written model that the next run would load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tpd_qa.errors import ConfigError

__all__ = ["FastTokenizer", "OnnxModel", "cache_root", "export_once", "supports_export"]

log = logging.getLogger(__name__)

_FORMAT = "2"  # bump when the export or quantisation recipe changes
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt")


def cache_root() -> Path:
    """``TPD_QA_CACHE_DIR``, else ``$XDG_CACHE_HOME/tpd_qa``, else ``~/.cache/tpd_qa``."""
    configured = os.environ.get("TPD_QA_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tpd_qa"


def supports_export(model: Any) -> bool:
    """True for a sentence-transformers model made of a transformer, mean pooling, normalise."""
    modules = list(model)
    if len(modules) < 2 or not hasattr(modules[0], "auto_model"):
        return False
    pooling = modules[1]
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None and getattr(pooling, "pooling_mode_mean_tokens", False):
        mode = "mean"
    if mode != "mean":
        return False
    return all(type(extra).__name__ == "Normalize" for extra in modules[2:])


def _model_key(location: Path) -> str:
    """Hash of the model folder's weight and config files (content) and library versions
    (read from the installed packages' metadata: nothing heavy is imported)."""
    from importlib.metadata import version

    digest = hashlib.sha256(f"{_FORMAT}|{version('torch')}|{version('onnxruntime')}".encode())
    files = sorted(p for p in location.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    for path in files:
        digest.update(str(path.relative_to(location)).encode("utf-8", "surrogatepass") + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:32]


class _Pooled:
    """The transformer followed by mean pooling and L2 normalisation, as one module."""

    def __new__(cls, transformer: Any) -> Any:
        import torch

        class Pooled(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.transformer = transformer

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                hidden = self.transformer(
                    input_ids=input_ids, attention_mask=attention_mask
                ).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(pooled, dim=1)

        return Pooled().eval()


OnnxPrecision = Literal["onnx-int8", "onnx-float32"]


def _export(model: Any, folder: Path) -> None:
    """Export ``model`` (float32, in memory) into ``folder``: as it is and quantised."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    sample = model.tokenizer(["an example", "another, longer example text"], padding=True)
    ids = torch.tensor(sample["input_ids"], dtype=torch.long)
    mask = torch.tensor(sample["attention_mask"], dtype=torch.long)
    handle, raw_name = tempfile.mkstemp(dir=folder, suffix=".float32.onnx.tmp")
    os.close(handle)
    handle, quant_name = tempfile.mkstemp(dir=folder, suffix=".int8.onnx.tmp")
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Pooled(model[0].auto_model),
                (ids, mask),
                raw_name,
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "embedding": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,
            )
            quantize_dynamic(
                raw_name,
                quant_name,
                # uint8 weights, one scale per output channel: cosine to float32 0.9946 mean
                # on SciFact passages; int8 weights 0.9929 (AVX2 without VNNI saturates
                # u8 x s8 pairs), per-tensor scales 0.94-0.977.
                weight_type=QuantType.QUInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
        # each file is complete or absent; a cache from before the float32 file existed
        # holds only the int8 one, and asking it for float32 exports both again
        os.replace(raw_name, folder / _FILES["onnx-float32"])
        os.replace(quant_name, folder / _FILES["onnx-int8"])
    finally:
        for name in (raw_name, quant_name):
            Path(name).unlink(missing_ok=True)


_FILES: dict[OnnxPrecision, str] = {
    "onnx-int8": "model.int8.onnx",
    "onnx-float32": "model.float32.onnx",
}


def _export_path(location: Path, precision: OnnxPrecision) -> Path:
    return cache_root() / "onnx" / _model_key(location) / _FILES[precision]


def export_once(model: Any, location: Path) -> Path | None:
    """Write the exports of ``model`` (loaded from ``location``, float32 weights) unless
    they are cached already; the folder that holds them, None where the model cannot be
    exported."""
    if not supports_export(model):
        return None
    folder = _export_path(location, "onnx-float32").parent
    if not all((folder / name).is_file() for name in _FILES.values()):
        log.info("exporting %s to %s (once)", location, folder)
        _export(model, folder)
    return folder


#: Texts -> ``input_ids`` and ``attention_mask`` (int64, padded to the longest, truncated).
Tokenize = Callable[[list[str]], tuple[np.ndarray, np.ndarray]]


class FastTokenizer:
    """A model folder's ``tokenizer.json`` run by the ``tokenizers`` library alone.

    The same Rust tokenizer that ``transformers``' fast tokenizers wrap, without importing
    ``transformers`` or ``torch`` (seconds at every start). Used only for models whose
    word-pieces were checked identical to ``transformers``' (the bundled default, in
    tests/test_precision.py).
    """

    def __init__(self, location: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        path = str(location / "tokenizer.json")
        self._count = Tokenizer.from_file(path)
        self._count.no_truncation()
        self._count.no_padding()
        self._batch = Tokenizer.from_file(path)
        pad = self._batch.token_to_id("[PAD]")
        if pad is None:
            raise ConfigError(f"{path} has no [PAD] token")
        self._batch.enable_truncation(max_length)
        self._batch.enable_padding(pad_id=pad, pad_token="[PAD]")

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = self._batch.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask

    def count(self, text: str) -> int:
        """Word-pieces of ``text`` without special tokens and without truncation."""
        return len(self._count.encode(text, add_special_tokens=False).ids)


class OnnxModel:
    """Runs a cached ONNX export; ``encode`` returns unit-length float32 vectors.

    :meth:`export` makes the export from a loaded sentence-transformers model (once per
    model and library versions); :meth:`cached` opens an existing one with the fast
    tokenizer, so neither ``torch`` nor ``sentence-transformers`` need be imported.
    """

    def __init__(self, path: Path, tokenize: Tokenize, *, batch_size: int, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads > 0:  # 0: ONNX Runtime's default, one thread per physical core
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self._tokenize = tokenize
        self.path = path
        self.batch_size = batch_size
        self.dimension = int(self._session.get_outputs()[0].shape[1])

    @classmethod
    def export(
        cls,
        model: Any,
        location: Path,
        *,
        batch_size: int,
        threads: int,
        precision: OnnxPrecision = "onnx-int8",
    ) -> OnnxModel:
        """Open ``model``'s cached export in ``precision``, making it first if there is none."""
        if not supports_export(model):
            raise ConfigError(
                f"{precision} needs a sentence-transformers model with mean pooling; "
                "use precision float32, bf16 or int8 for this model"
            )
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                f"{precision} needs onnxruntime and onnx: pip install onnxruntime onnx"
            ) from exc
        if not location.is_dir():
            raise ConfigError(f"{precision} needs a model folder on disk, not {str(location)!r}")
        folder = export_once(model, location)
        assert folder is not None  # supports_export was checked above
        path = folder / _FILES[precision]
        max_length = int(model.max_seq_length)

        def tokenize(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
            batch = model.tokenizer(
                texts, padding=True, truncation=True, max_length=max_length, return_tensors="np"
            )
            return (
                np.asarray(batch["input_ids"], dtype=np.int64),
                np.asarray(batch["attention_mask"], dtype=np.int64),
            )

        return cls(path, tokenize, batch_size=batch_size, threads=threads)

    @classmethod
    def cached(
        cls,
        location: Path,
        tokenizer: FastTokenizer,
        *,
        batch_size: int,
        threads: int,
        precision: OnnxPrecision = "onnx-int8",
    ) -> OnnxModel | None:
        """The existing export of the model folder ``location`` in ``precision``, or None."""
        path = _export_path(location, precision)
        if not path.is_file():
            return None
        return cls(path, tokenizer, batch_size=batch_size, threads=threads)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in length-sorted batches (less padding), in the input order."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Longest first, ties by text: the same texts always form the same batches (each
        # batch's activations share one quantisation scale, so batch-mates matter a little).
        order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), texts[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            ids, mask = self._tokenize([texts[i] for i in rows])
            out[rows] = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out
