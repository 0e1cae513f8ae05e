"""Tests of the public Python API: exports, build_index, retrieve and its index cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tpd_qa
from tpd_qa import api
from tpd_qa.errors import IndexMismatchError, IndexNotFoundError, QueryError
from tpd_qa.index import Index, read_manifest
from tpd_qa.records import BuildReport, Passage

SEED_NAME = "us-japan-technology-prosperity-deal.txt"


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records every Index.load (i.e. every time the API reads an index from disk)."""
    calls: list[Path] = []
    original = Index.load.__func__  # type: ignore[attr-defined]

    def counting(cls, directory, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(Path(directory))
        return original(cls, directory, **kwargs)

    monkeypatch.setattr(Index, "load", classmethod(counting))
    return calls


def test_public_names() -> None:
    for name in ("retrieve", "Index", "Passage", "build_index"):
        assert name in tpd_qa.__all__
        assert hasattr(tpd_qa, name)
    assert tpd_qa.retrieve is api.retrieve
    assert tpd_qa.build_index is api.build_index
    assert tpd_qa.Index is Index
    assert tpd_qa.Passage is Passage
    assert isinstance(tpd_qa.__version__, str)
    for name in tpd_qa.__all__:
        assert hasattr(tpd_qa, name), name


def test_build_and_retrieve(corpus: Path, tmp_path: Path) -> None:
    directory = tmp_path / "index"
    report = api.build_index(corpus, directory, model="hash")
    assert isinstance(report, BuildReport)
    assert report.counts()["added"] == 3
    passages = tpd_qa.retrieve("JT-60SA fusion facility", k=3, index_dir=directory)
    assert 0 < len(passages) <= 3
    assert all(isinstance(p, Passage) for p in passages)
    only = tpd_qa.retrieve("fusion", k=5, index_dir=directory, sources=["sub/semis.txt"])
    assert {p.source for p in only} <= {"sub/semis.txt"}
    keyword = tpd_qa.retrieve("JT-60SA", k=2, index_dir=str(directory), mode="keyword")
    assert "JT-60SA" in keyword[0].text
    docs = api.list_documents(directory)
    assert [d.source for d in docs] == ["notes.md", "sub/semis.txt", SEED_NAME]


def test_retrieve_errors(corpus: Path, tmp_path: Path) -> None:
    directory = tmp_path / "index"
    with pytest.raises(IndexNotFoundError) as missing:
        tpd_qa.retrieve("anything", index_dir=directory)
    assert missing.value.remedy == "build"
    api.build_index(corpus, directory, model="hash")
    with pytest.raises(QueryError):
        tpd_qa.retrieve("  ", index_dir=directory)
    with pytest.raises(QueryError):
        tpd_qa.retrieve("fusion", k=0, index_dir=directory)
    with pytest.raises(QueryError):
        tpd_qa.retrieve("fusion", index_dir=directory, mode="magic")


def test_retrieve_caches_the_loaded_index(
    corpus: Path, tmp_path: Path, load_calls: list[Path]
) -> None:
    directory = tmp_path / "index"
    api.build_index(corpus, directory, model="hash")
    load_calls.clear()
    first = tpd_qa.retrieve("fusion", index_dir=directory)
    second = tpd_qa.retrieve("fusion", index_dir=directory)
    tpd_qa.retrieve("space station", index_dir=directory, mode="bm25")
    assert first == second
    assert len(load_calls) == 1
    assert api.load_index(directory) is api.load_index(directory)
    assert len(load_calls) == 1


def test_retrieve_picks_up_a_rebuild(corpus: Path, tmp_path: Path, load_calls: list[Path]) -> None:
    directory = tmp_path / "index"
    api.build_index(corpus, directory, model="hash")
    assert tpd_qa.retrieve("Kobe hydrogen terminal", index_dir=directory, mode="bm25") == []
    before = api.load_index(directory)
    (corpus / "kobe.txt").write_text(
        "The Kobe hydrogen terminal opens in 2030.\n", encoding="utf-8"
    )
    api.build_index(corpus, directory, model="hash")
    passages = tpd_qa.retrieve("Kobe hydrogen terminal", index_dir=directory, mode="bm25")
    assert passages and passages[0].source == "kobe.txt"
    assert api.load_index(directory) is not before
    # a rebuild by another process (the CLI) is picked up as well
    (corpus / "kobe.txt").unlink()
    env = {**os.environ, "TPD_QA_MODEL": "hash"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tpd_qa",
            "index",
            "--corpus",
            str(corpus),
            "--index",
            str(directory),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert tpd_qa.retrieve("Kobe hydrogen terminal", index_dir=directory, mode="bm25") == []


def test_unchanged_rebuild_keeps_the_cache(
    corpus: Path, tmp_path: Path, load_calls: list[Path]
) -> None:
    directory = tmp_path / "index"
    api.build_index(corpus, directory, model="hash")
    tpd_qa.retrieve("fusion", index_dir=directory)
    generation = read_manifest(directory)["generation"]
    api.build_index(corpus, directory, model="hash")
    assert read_manifest(directory)["generation"] == generation
    calls = len(load_calls)
    tpd_qa.retrieve("fusion", index_dir=directory)
    assert len(load_calls) == calls


def test_environment_defaults(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert api.default_corpus_dir() == Path("corpus")
    assert api.default_index_dir() == Path("index")
    assert api.configured_model() is None
    # ./corpus and ./index by default (the corpus fixture lives in tmp_path/corpus)
    monkeypatch.setenv("TPD_QA_MODEL", "hash")
    report = api.build_index()
    assert report.documents == 3
    assert (tmp_path / "index" / "manifest.json").is_file()
    assert tpd_qa.retrieve("JT-60SA")
    # environment variables override the defaults
    other_corpus = tmp_path / "other"
    other_corpus.mkdir()
    (other_corpus / "only.txt").write_text("Sapporo snow research.\n", encoding="utf-8")
    monkeypatch.setenv("TPD_QA_CORPUS", str(other_corpus))
    monkeypatch.setenv("TPD_QA_INDEX", str(tmp_path / "idx2"))
    assert api.default_corpus_dir() == other_corpus
    report = api.build_index()
    assert [o.source for o in report.outcomes] == ["only.txt"]
    assert tpd_qa.retrieve("Sapporo snow")[0].source == "only.txt"
    assert read_manifest(tmp_path / "idx2")["model"]["name"] == "hash:64"


def test_configured_model_must_match_the_index(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "index"
    api.build_index(corpus, directory, model="hash:64")
    monkeypatch.setenv("TPD_QA_MODEL", "hash:32")
    with pytest.raises(IndexMismatchError) as mismatch:
        tpd_qa.retrieve("fusion", index_dir=directory)
    assert mismatch.value.remedy == "rebuild"
    # building with the configured model rebuilds, after which retrieval works
    report = api.build_index(corpus, directory)
    assert report.full and "model changed" in report.full_reason
    assert tpd_qa.retrieve("fusion", index_dir=directory)


def test_build_index_progress_callback(corpus: Path, tmp_path: Path) -> None:
    events: list[tuple[str, int, int]] = []
    api.build_index(
        corpus, tmp_path / "index", model="hash", on_progress=lambda *e: events.append(e)
    )
    stages = {stage for stage, _, _ in events}
    assert {"scanning", "embedding"} <= stages
    last_embedding = [e for e in events if e[0] == "embedding"][-1]
    assert last_embedding[1] == last_embedding[2]
