"""Tests of the keyword index: text analysis, BM25 ranking, filters and persistence."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import build_test_index
from tpd_qa import sparse
from tpd_qa.embedding import HashEmbedder
from tpd_qa.errors import IndexCorruptError
from tpd_qa.index import Index
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


WORDS = ["fusion", "magnets", "quantum", "chips", "cables", "lunar", "rovers", "of", "the"]


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(st.lists(st.sampled_from(WORDS), max_size=8), max_size=8),
    after=st.lists(st.lists(st.sampled_from(WORDS), max_size=8), max_size=8),
    kept=st.integers(0, 8),
)
def test_a_rebuild_reusing_tokens_scores_as_a_fresh_build(
    before: list[list[str]], after: list[list[str]], kept: int
) -> None:
    old = [" ".join(words) for words in before]
    new = old[:kept] + [" ".join(words) for words in after]  # some rows kept, some new
    rebuilt = SparseIndex.build(new, previous=SparseIndex.build(old))
    fresh = SparseIndex.build(new)
    # the reference: bm25s indexing the analysed words themselves, as it was first used
    reference = sparse._bm25s().BM25(method="lucene", k1=1.2, b=0.75)
    reference.index([t or ["\x00"] for t in fresh.analyse(new)] or [["\x00"]], show_progress=False)
    for query in ["fusion magnets", "quantum chips cables", "lunar rovers of the", "absent"]:
        assert np.array_equal(rebuilt.scores(query), fresh.scores(query))
        ids = reference.get_tokens_ids(fresh.analyse([query])[0])
        expected = reference.get_scores_from_ids(ids)[: len(new)] if ids else np.zeros(len(new))
        assert np.array_equal(fresh.scores(query), np.asarray(expected, dtype=np.float32))
        assert rebuilt.search(query, 3)[1].tolist() == fresh.search(query, 3)[1].tolist()
    keys = ["fusion", "magnet", "lunar", "absent"]
    assert np.array_equal(rebuilt.idf(keys), fresh.idf(keys))
    starts, ends = np.array([0, 1], dtype=np.int64), np.array([len(new), len(new)])
    assert np.array_equal(rebuilt.holding(keys, starts, ends), fresh.holding(keys, starts, ends))


def _counting_analysis(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    analysed: list[str] = []
    real = sparse.analyse

    def counting(texts: Sequence[str], *args: Any, **kwargs: Any) -> list[list[str]]:
        analysed.extend(texts)
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(sparse, "analyse", counting)
    return analysed


def test_a_rebuild_analyses_only_texts_the_previous_index_had_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    analysed = _counting_analysis(monkeypatch)
    first = SparseIndex.build(TEXTS)
    assert analysed == TEXTS
    analysed.clear()
    added = "Submarine cables cross the Pacific."
    second = SparseIndex.build([*TEXTS[1:], added, TEXTS[1]], previous=first)
    assert analysed == [added]
    assert second.search("submarine cables", 1)[1].tolist() == [4]
    # other settings analyse differently: nothing is reused
    analysed.clear()
    SparseIndex.build(TEXTS, SparseSettings(stemmer=None), previous=first)
    assert analysed == TEXTS
    # the token ids are saved with the index: a loaded one is reused as well
    first.save(tmp_path)
    loaded = SparseIndex.load(tmp_path, SparseSettings(), len(TEXTS))
    analysed.clear()
    rebuilt = SparseIndex.build([*TEXTS, added], previous=loaded)
    assert analysed == [added]
    fresh = SparseIndex.build([*TEXTS, added])
    for query in ["fusion plasma", "submarine cables", "量子技術"]:
        assert np.array_equal(rebuilt.scores(query), fresh.scores(query))


def test_token_ids_that_are_absent_or_do_not_fit_are_not_reused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    analysed = _counting_analysis(monkeypatch)
    SparseIndex.build(TEXTS).save(tmp_path)
    ids = tmp_path / "tokens.ids.npy"
    saved = np.load(ids)
    damaged = [
        saved[:-1],  # shorter than the offsets say
        saved.astype(np.int64),  # another type
        np.full_like(saved, 10**6),  # ids outside the vocabulary
    ]
    for bad in damaged:
        np.save(ids, bad)
        loaded = SparseIndex.load(tmp_path, SparseSettings(), len(TEXTS))
        analysed.clear()
        rebuilt = SparseIndex.build(TEXTS, previous=loaded)
        assert analysed == TEXTS  # analysed again, never wrong
        assert np.array_equal(rebuilt.scores("fusion"), SparseIndex.build(TEXTS).scores("fusion"))
    np.save(ids, saved)
    vocabulary_file = tmp_path / "vocab.index.json"
    vocabulary = json.loads(vocabulary_file.read_text(encoding="utf-8"))
    top = max((token for token in vocabulary if token), key=vocabulary.get)
    vocabulary[top] += 5  # a gap: the next new token would take a number in use
    vocabulary_file.write_text(json.dumps(vocabulary), encoding="utf-8")
    loaded = SparseIndex.load(tmp_path, SparseSettings(), len(TEXTS))
    analysed.clear()
    SparseIndex.build(TEXTS, previous=loaded)
    assert analysed == TEXTS
    ids.write_bytes(b"not an array")
    SparseIndex.load(tmp_path, SparseSettings(), len(TEXTS))  # still loads
    ids.unlink()  # as an index saved before token ids were: loads, reuses nothing
    loaded = SparseIndex.load(tmp_path, SparseSettings(), len(TEXTS))
    analysed.clear()
    SparseIndex.build(TEXTS, previous=loaded)
    assert analysed == TEXTS


def test_an_index_update_analyses_only_the_new_documents_passages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in {
        "fusion.txt": "Fusion magnets are built by suppliers for the reactor programme.",
        "quantum.txt": "Quantum computers need cryogenic supply chains and trained staff.",
    }.items():
        (corpus / name).write_text(text + "\n", encoding="utf-8")
    build_test_index(corpus, tmp_path / "index")
    index = Index.load(tmp_path / "index", embedder=HashEmbedder(64))  # as `tpd-qa index` does
    analysed = _counting_analysis(monkeypatch)
    (corpus / "cables.txt").write_text("Submarine cables cross the Pacific.\n", encoding="utf-8")
    index.update(corpus)
    assert len(analysed) == 1 and "Submarine cables" in analysed[0]
    fresh, _ = build_test_index(corpus)
    for question in ["fusion magnets", "submarine cables", "cryogenic staff"]:
        assert np.array_equal(
            index.searcher.sparse.scores(question), fresh.searcher.sparse.scores(question)
        )
