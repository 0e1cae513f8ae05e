"""Shared fixtures: a deterministic fake embedder, a small corpus, isolated env vars."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import chromium
from documents import make_pdf
from tpd_qa.embedding import HashEmbedder

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "corpus" / "us-japan-technology-prosperity-deal.txt"
SHARED = ROOT.parent / "shared"

__all__ = ["ROOT", "SEED", "SHARED", "CountingEmbedder", "make_pdf"]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TPD_QA_CORPUS", "TPD_QA_INDEX", "TPD_QA_MODEL", "TPD_QA_PRECISION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per browser test module."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def fake_embedder() -> HashEmbedder:
    """Deterministic bag-of-words embedder: no model weights, same vectors every run."""
    return HashEmbedder(64)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A corpus folder holding the memorandum article and two short notes."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(SEED, folder / SEED.name)
    (folder / "notes.md").write_text(
        "# Fusion notes\n\nThe JT-60SA tokamak in Naka is the largest superconducting "
        "tokamak operating today.\n\n## Space\n\nArtemis partners plan lunar surface work.\n",
        encoding="utf-8",
    )
    sub = folder / "sub"
    sub.mkdir()
    (sub / "semis.txt").write_text(
        "Semiconductor supply chains depend on lithography tools and rare gases. "
        "Both countries fund advanced packaging research.\n",
        encoding="utf-8",
    )
    return folder


class CountingEmbedder:
    """Wraps an embedder and records the texts of every ``embed_batch`` call."""

    def __init__(self, inner: HashEmbedder | None = None) -> None:
        self.inner = inner or HashEmbedder(64)
        self.name = self.inner.name
        self.dimension = self.inner.dimension
        self.max_tokens = self.inner.max_tokens
        self.batches: list[list[str]] = []

    def embed_batch(self, texts):  # type: ignore[no-untyped-def]
        self.batches.append(list(texts))
        return self.inner.embed_batch(texts)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    @property
    def embedded(self) -> int:
        """Texts embedded so far (queries included)."""
        return sum(len(batch) for batch in self.batches)

    def reset(self) -> None:
        self.batches.clear()


@pytest.fixture
def counting_embedder() -> CountingEmbedder:
    return CountingEmbedder()
