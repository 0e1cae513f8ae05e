"""Tests of the keyword index: text analysis, BM25 ranking, filters and persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tpd_qa.errors import IndexCorruptError
from tpd_qa.sparse import SparseIndex, SparseSettings

TEXTS = [
    "The JT-60SA tokamak in Naka studies fusion plasma.",
    "Semiconductor supply chains depend on lithography tools and rare gases.",
    "Artemis partners plan lunar surface work and lunar rovers.",
    "Quantum computers need cryogenic cooling.",
    "日米は半導体と量子技術で協力する。",
]


@pytest.fixture(scope="module")
def index() -> SparseIndex:
    return SparseIndex.build(TEXTS)


def test_settings_defaults_and_record() -> None:
    settings = SparseSettings()
    assert (settings.method, settings.k1, settings.b) == ("lucene", 1.2, 0.75)
    assert settings.to_dict() == {
        "method": "lucene",
        "k1": 1.2,
        "b": 0.75,
        "stemmer": "english",
        "stopwords": "en",
        "cjk_bigrams": True,
    }
    assert SparseSettings(**settings.to_dict()) == settings


def test_analysis_lowercases_stems_and_drops_stop_words(index: SparseIndex) -> None:
    tokens = index.analyse(["The Rovers are RUNNING on the Moon"])[0]
    assert "the" not in tokens and "are" not in tokens and "on" not in tokens
    assert "rover" in tokens and "run" in tokens and "moon" in tokens
    # the same analysis for documents and questions: inflections meet
    assert index.analyse(["rover"])[0] == index.analyse(["Rovers"])[0]


def test_cjk_runs_become_overlapping_pairs(index: SparseIndex) -> None:
    tokens = index.analyse(["半導体"])[0]
    assert tokens == ["半導", "導体"]
    plain = SparseIndex.build(["半導体"], SparseSettings(cjk_bigrams=False))
    assert plain.analyse(["半導体"])[0] == ["半導体"]


def test_search_ranks_matching_rows_first(index: SparseIndex) -> None:
    scores, ids = index.search("lithography", 3)
    assert ids.tolist() == [1]
    assert scores.dtype == np.float32 and scores[0] > 0
    _, ids = index.search("lunar rovers fusion", 5)
    assert ids.tolist()[:2] == [2, 0]  # two matching words (one repeated) before one
    _, ids = index.search("半導体", 5)
    assert ids.tolist() == [4]
    _, ids = index.search("量子", 5)
    assert ids.tolist() == [4]


def test_search_returns_only_positive_scores_best_first(index: SparseIndex) -> None:
    scores, ids = index.search("lunar plasma cooling gases", 10)
    assert len(ids) == 4 and set(ids.tolist()) == {0, 1, 2, 3}
    assert (scores > 0).all()
    assert scores.tolist() == sorted(scores.tolist(), reverse=True)
    assert len(index.search("lunar plasma cooling gases", 2)[1]) == 2


def test_rarer_and_repeated_terms_weigh_more() -> None:
    texts = ["alpha beta", "alpha gamma", "alpha delta", "beta beta epsilon"]
    sparse = SparseIndex.build(texts)
    scores = sparse.scores("alpha beta")
    assert scores[0] > scores[1]  # beta (in two rows) is rarer than alpha (in three)
    assert scores[3] > scores[1]  # beta twice beats alpha once
    assert scores.shape == (4,)


def test_unknown_words_and_stop_words_find_nothing(index: SparseIndex) -> None:
    for query in ("zeppelin", "the and of", "", "!!!"):
        scores, ids = index.search(query, 5)
        assert len(ids) == 0 and len(scores) == 0
    assert not index.scores("zeppelin").any()


def test_allowed_rows_restrict_results(index: SparseIndex) -> None:
    _, ids = index.search("lunar fusion lithography", 5, np.array([0, 1], dtype=np.int64))
    assert sorted(ids.tolist()) == [0, 1]
    _, ids = index.search("lunar", 5, np.array([3], dtype=np.int64))
    assert ids.tolist() == []


def test_empty_index_and_empty_rows() -> None:
    empty = SparseIndex.build([])
    assert empty.size == 0
    assert len(empty.search("anything", 3)[1]) == 0
    blank = SparseIndex.build(["", "the of and", "tokamak"])
    assert blank.size == 3
    assert blank.search("tokamak", 3)[1].tolist() == [2]


def test_save_and_load_round_trip(index: SparseIndex, tmp_path: Path) -> None:
    index.save(tmp_path)
    assert {p.suffix for p in tmp_path.iterdir()} <= {".npy", ".json"}
    loaded = SparseIndex.load(tmp_path, index.settings, index.size)
    for query in ("lunar rovers", "semiconductor gases", "半導体", "nothing here"):
        want, got = index.search(query, 5), loaded.search(query, 5)
        assert got[1].tolist() == want[1].tolist()
        assert np.allclose(got[0], want[0])
    assert loaded.memory_bytes() > 0


def test_load_refuses_other_sizes_and_damage(index: SparseIndex, tmp_path: Path) -> None:
    index.save(tmp_path)
    with pytest.raises(IndexCorruptError, match="rows"):
        SparseIndex.load(tmp_path, index.settings, index.size + 1)
    with pytest.raises(IndexCorruptError, match="keyword index"):
        SparseIndex.load(tmp_path / "missing", index.settings, index.size)
