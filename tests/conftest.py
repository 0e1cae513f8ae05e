"""Shared fixtures: a deterministic fake embedder, a small corpus, isolated env vars."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tpd_qa.embedding import HashEmbedder

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "corpus" / "us-japan-technology-prosperity-deal.txt"
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TPD_QA_CORPUS", "TPD_QA_INDEX", "TPD_QA_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


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
