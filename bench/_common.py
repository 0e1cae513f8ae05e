"""Helpers shared by the benchmark scripts: paths, machine facts, a vector cache, JSON output."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: ../shared beside the checkout (``TPD_QA_SHARED`` for a worktree elsewhere).
SHARED = Path(os.environ.get("TPD_QA_SHARED") or ROOT.parent / "shared")
SCIFACT = Path(os.environ.get("TPD_QA_SCIFACT") or SHARED / "data" / "scifact")
MEMORANDUM_QA = ROOT / "data" / "memorandum_qa.jsonl"
CORPUS = ROOT / "corpus"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def machine() -> dict[str, Any]:
    """CPU model, core count, memory and library versions, for every results file."""
    import torch

    cpu = "unknown"
    flags = ""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="ignore")
        match = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
        cpu = match.group(1).strip() if match else cpu
        flags = info
    except OSError:
        pass
    memory = 0
    try:
        match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        memory = int(match.group(1)) // 1024 if match else 0
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_mib": memory,
        "avx512_bf16": bool(re.search(r"\bavx512_bf16\b", flags)),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (with machine facts) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return path


class CachedEmbedder:
    """Wraps an embedder and keeps every vector it makes in an .npz file, keyed by text.

    Benchmarks that index the same texts again (other settings, other runs) then skip the
    model entirely; the cache file name should say which model and precision made it.
    """

    def __init__(self, inner: Any, path: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self.path = Path(path)
        self._rows: dict[str, np.ndarray] = {}
        self.misses = 0
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as data:
                for key, vector in zip(data["keys"].tolist(), data["vectors"], strict=True):
                    self._rows[key] = vector

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        todo = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self._rows}.items()
        )
        if todo:
            self.misses += len(todo)
            vectors = self.inner.embed_batch([t for _, t in todo])
            for (key, _), vector in zip(todo, vectors, strict=True):
                self._rows[key] = vector
        return np.stack([self._rows[k] for k in keys]) if keys else np.zeros((0, self.dimension))

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._rows), dtype="U40")
        vectors = np.stack(list(self._rows.values())).astype(np.float32)
        temporary = self.path.with_suffix(".tmp.npz")
        np.savez(temporary, keys=keys, vectors=vectors)
        os.replace(temporary, self.path)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / p99 / mean of latencies given in seconds, as milliseconds."""
    array = np.asarray(values, dtype=np.float64) * 1000
    return {
        "p50_ms": round(float(np.percentile(array, 50)), 3),
        "p95_ms": round(float(np.percentile(array, 95)), 3),
        "p99_ms": round(float(np.percentile(array, 99)), 3),
        "mean_ms": round(float(array.mean()), 3),
    }
