"""Which numeric precision the embedding model runs in: CPU features, availability, choice.

The choice is deterministic (no timing at start-up): among the precisions this CPU and this
installation can run, take the first in the speed ranking measured for this kind of CPU whose
measured quality reaches ``QUALITY_THRESHOLD``; float32 is always the fallback.
``TPD_QA_PRECISION`` (or an explicit ``precision=``) forces one.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from tpd_qa.errors import ConfigError

__all__ = [
    "Precision",
    "PRECISIONS",
    "QUALITY_THRESHOLD",
    "MEASURED_COSINE",
    "ENV_VAR",
    "CpuFeatures",
    "cpu_features",
    "available_precisions",
    "speed_ranking",
    "QUESTION_ENGINE",
    "choose_precision",
    "normalise_precision",
]

log = logging.getLogger(__name__)

Precision = Literal["float32", "bf16", "int8", "onnx-int8", "onnx-float32"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
ENV_VAR = "TPD_QA_PRECISION"
_ALIASES: dict[str, Precision] = {
    "float32": "float32",
    "fp32": "float32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "int8": "int8",
    "torch-int8": "int8",
    "onnx-int8": "onnx-int8",
    "onnx": "onnx-int8",
    "onnx-float32": "onnx-float32",
    "onnx-fp32": "onnx-float32",
}

#: A fast path must keep the mean cosine between its vectors and float32's at or above this.
#: At 0.99 the two vectors of one passage are closer than nearly any two different passages
#: (neighbouring SciFact passages of one abstract score ~0.7-0.9), so rankings barely move;
#: below it, near-ties between passages start to swap.
QUALITY_THRESHOLD = 0.99

#: Mean cosine to float32 vectors, bundled all-MiniLM-L6-v2, SciFact passages of ~150 tokens
#: (bench/bench_embedding.py, bench/README.md). Only the bundled default model was measured:
#: for other models the automatic choice allows just float32 and bf16 (bf16 keeps float32's
#: exponent range; its cosine is ~0.9999 for BERT-style encoders in general).
MEASURED_COSINE: dict[Precision, float] = {
    "float32": 1.0,
    "bf16": 0.9999,
    # torch dynamic int8, per-channel weights: on AVX2 without VNNI fbgemm quantises the
    # activations to 7 bits; 0.929 with per-tensor weights.
    "int8": 0.981,
    # ONNX Runtime, MatMul weights in uint8 with per-channel scales (int8 weights 0.993,
    # per-tensor scales 0.942-0.977); 0.992 on the memorandum's own passages.
    "onnx-int8": 0.9946,
    # the same float32 arithmetic in ONNX Runtime (cosine 1.00000 on SQuAD questions)
    "onnx-float32": 1.0,
}


@dataclass(frozen=True)
class CpuFeatures:
    """The instruction-set flags that matter for the precisions (from ``/proc/cpuinfo``)."""

    flags: frozenset[str]

    @classmethod
    def from_flags(cls, flags: Iterable[str]) -> CpuFeatures:
        return cls(frozenset(flag.lower() for flag in flags))

    @property
    def native_bf16(self) -> bool:
        """bfloat16 arithmetic in hardware (AVX-512 BF16 or AMX); emulated bf16 is slow."""
        return bool(self.flags & {"avx512_bf16", "amx_bf16"})

    @property
    def int8_dot(self) -> bool:
        """An 8-bit dot-product instruction (VNNI or AMX), where int8 gains the most."""
        return bool(self.flags & {"avx512_vnni", "avx_vnni", "amx_int8"})

    @property
    def avx2(self) -> bool:
        """The floor of the int8 kernels (fbgemm, onnxruntime's MLAS)."""
        return "avx2" in self.flags


@lru_cache(maxsize=1)
def cpu_features() -> CpuFeatures:
    """This machine's CPU flags (empty where ``/proc/cpuinfo`` cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return CpuFeatures(frozenset())
    flags: set[str] = set()
    for match in re.finditer(r"^flags\s*:\s*(.*)$", text, re.M):
        flags.update(match.group(1).split())
    return CpuFeatures.from_flags(flags)


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _torch_int8_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    engines = set(torch.backends.quantized.supported_engines)
    return bool(engines & {"x86", "fbgemm"})


def available_precisions(
    cpu: CpuFeatures,
    *,
    torch_int8: bool | None = None,
    onnxruntime: bool | None = None,
) -> list[Precision]:
    """The precisions this CPU and installation can run well, float32 first
    (``torch_int8`` / ``onnxruntime`` override what is installed, for tests)."""
    given = {"int8": torch_int8, "onnx-int8": onnxruntime, "onnx-float32": onnxruntime}
    return [
        precision
        for precision in PRECISIONS
        if (
            _available(precision, cpu)
            if given.get(precision) is None
            else cpu.avx2 and bool(given[precision])
        )
    ]


def _available(precision: Precision, cpu: CpuFeatures) -> bool:
    """Whether this CPU and installation can run ``precision`` (as available_precisions)."""
    if precision == "float32":
        return True
    if precision == "bf16":
        return cpu.native_bf16
    if precision == "int8":
        return cpu.avx2 and _torch_int8_available()
    return cpu.avx2 and _module_available("onnxruntime") and _module_available("onnx")


#: Where questions run when passages run in torch's float32 or bf16: ONNX Runtime starts
#: one short text 2-3 times faster than torch, in the same float32 arithmetic (SQuAD
#: questions one at a time on an AVX-512 BF16 host, per-round medians: 4.3-5.5 ms against
#: 8.3-11.8 ms in bf16; bench/bench_query_embedding.py). The int8 engines keep their own:
#: mixing int8 questions with bf16 passages cost SciFact nDCG@10 0.005.
QUESTION_ENGINE: dict[Precision, Precision] = {"float32": "onnx-float32", "bf16": "onnx-float32"}


def speed_ranking(cpu: CpuFeatures) -> tuple[Precision, ...]:
    """Fastest first, as measured on each kind of CPU (bench/README.md, embedding section)."""
    if cpu.native_bf16:
        # AVX-512 BF16 machines: bf16 measured 1.96-2.93x float32; int8 not measured there.
        return ("bf16", "onnx-int8", "int8", "float32")
    return ("onnx-int8", "int8", "float32", "bf16")


def normalise_precision(value: str) -> Precision | Literal["auto"]:
    """``auto`` or one of ``PRECISIONS`` (aliases: bfloat16, fp32, onnx); else ConfigError."""
    key = value.strip().lower()
    if key in {"", "auto"}:
        return "auto"
    if key not in _ALIASES:
        raise ConfigError(
            f"unknown precision {value!r}; use auto or one of {', '.join(PRECISIONS)}"
        )
    return _ALIASES[key]


def choose_precision(
    requested: str = "auto",
    *,
    cpu: CpuFeatures | None = None,
    available: Iterable[Precision] | None = None,
    measured_model: bool = True,
    env: Mapping[str, str] | None = None,
    queries: bool = False,
) -> Precision:
    """The precision to run: forced by ``requested`` or ``TPD_QA_PRECISION``, else automatic.

    ``measured_model`` says the model is the bundled default, whose quality per precision
    is in ``MEASURED_COSINE``; for other models the automatic choice keeps to float32 and
    bf16. A forced precision is returned as asked even where it would be slow. ``queries``
    chooses for questions: the passages' precision, or its faster twin in
    :data:`QUESTION_ENGINE` where that runs here (bundled model only).
    """
    env = os.environ if env is None else env
    choice = normalise_precision(requested)
    if choice == "auto":
        choice = normalise_precision(env.get(ENV_VAR, ""))
    if choice != "auto":
        return choice
    cpu = cpu_features() if cpu is None else cpu
    given = None if available is None else set(available)
    if queries:
        passages = choose_precision(
            cpu=cpu, available=available, measured_model=measured_model, env={}
        )
        twin = QUESTION_ENGINE.get(passages)
        if twin is None or not measured_model:
            return passages
        return twin if (_available(twin, cpu) if given is None else twin in given) else passages
    for precision in speed_ranking(cpu):
        # availability is checked lazily, in speed order: the first usable choice never
        # pays for probing the others (torch's int8 engines need torch imported)
        usable = _available(precision, cpu) if given is None else precision in given
        if not usable:
            continue
        if not measured_model and precision not in {"float32", "bf16"}:
            continue
        if MEASURED_COSINE[precision] >= QUALITY_THRESHOLD:
            return precision
    return "float32"
