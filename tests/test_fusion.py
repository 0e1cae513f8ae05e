"""Tests of fusion: the three ways of combining dense and keyword rankings.

The functions of ``tpd_qa.fusion`` are checked against hand-computed figures; then each
method is chosen through ``SearchSettings(fusion=...)`` and checked end to end through
``Index.search`` against an independent computation from the two retrievers' candidates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from builders import build_test_index
from tpd_qa.embedding import HashEmbedder
from tpd_qa.errors import ConfigError
from tpd_qa.fusion import convex_fusion, min_max, reciprocal_rank_fusion, weighted_fusion
from tpd_qa.index import Index, SearchSettings
from tpd_qa.modes import FUSIONS

QUESTIONS = [
    "Which facility will help commercialize fusion?",
    "lithography tools and rare gases",
    "Artemis lunar surface",
    "quantum computing cooperation",
]


def scored(scores: list[float], ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(scores, dtype=np.float32), np.asarray(ids, dtype=np.int64)


# ---------------------------------------------------------------------------------------
# the functions


def test_rrf_sums_weight_over_k_plus_rank() -> None:
    fused = reciprocal_rank_fusion([[7, 3, 5], [3, 9]], k=10.0)
    assert fused[3] == pytest.approx(1 / 12 + 1 / 11)
    assert fused[7] == pytest.approx(1 / 11)
    assert fused[5] == pytest.approx(1 / 13)
    assert fused[9] == pytest.approx(1 / 12)
    assert max(fused, key=fused.__getitem__) == 3  # second and first beats first alone


def test_rrf_weights_scale_each_list() -> None:
    fused = reciprocal_rank_fusion([[1], [2]], k=0.0, weights=[0.25, 2.0])
    assert fused == {1: pytest.approx(0.25), 2: pytest.approx(2.0)}
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[1], [2]], weights=[1.0])


def test_min_max() -> None:
    assert min_max(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert min_max(np.array([3.0, 3.0])).tolist() == [1.0, 1.0]
    assert min_max(np.array([0.0, 0.0])).tolist() == [0.0, 0.0]
    assert min_max(np.array([])).size == 0


def test_weighted_fusion_rescales_each_list() -> None:
    lists = {"dense": scored([0.9, 0.5, 0.1], [1, 2, 3]), "bm25": scored([8.0, 2.0], [3, 4])}
    fused = weighted_fusion(lists, {"dense": 0.6, "bm25": 0.4})
    assert fused[1] == pytest.approx(0.6)  # top of dense, absent from bm25
    assert fused[2] == pytest.approx(0.3)
    assert fused[3] == pytest.approx(0.4)  # bottom of dense (0), top of bm25
    assert fused[4] == pytest.approx(0.0)
    assert weighted_fusion(lists, {"dense": 1.0}) == pytest.approx({1: 1.0, 2: 0.5, 3: 0.0})


def test_convex_fusion_keeps_cosines_and_scales_keywords_by_the_top() -> None:
    lists = {"dense": scored([0.5, 0.25], [1, 2]), "bm25": scored([4.0, 1.0], [2, 3])}
    fused = convex_fusion(lists, {"dense": 0.8, "bm25": 0.2})
    assert fused[1] == pytest.approx(0.8 * 0.5)  # not stretched to 1 as min-max would
    assert fused[2] == pytest.approx(0.8 * 0.25 + 0.2 * 1.0)
    assert fused[3] == pytest.approx(0.2 * 0.25)
    zero = convex_fusion({"bm25": scored([0.0], [5])}, {"bm25": 1.0})
    assert zero == {5: 0.0}
    assert convex_fusion({"dense": scored([], [])}, {"dense": 1.0}) == {}


def test_fusion_setting_is_checked() -> None:
    assert FUSIONS == ("convex", "rrf", "weighted")
    for fusion in FUSIONS:
        assert SearchSettings(fusion=fusion).fusion == fusion
    for typo in ("RRF", "convx", "", "reciprocal"):
        with pytest.raises(ConfigError, match="fusion"):
            SearchSettings(fusion=typo)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        SearchSettings(candidates=0)


# ---------------------------------------------------------------------------------------
# through Index.search


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Index:
    from conftest import SEED

    folder = tmp_path_factory.mktemp("fusion") / "corpus"
    folder.mkdir()
    (folder / SEED.name).write_bytes(SEED.read_bytes())
    (folder / "notes.md").write_text(
        "# Fusion notes\n\nThe JT-60SA tokamak in Naka is the largest superconducting "
        "tokamak operating today.\n\n## Space\n\nArtemis partners plan lunar surface work.\n",
        encoding="utf-8",
    )
    index, _ = build_test_index(folder, embedder=HashEmbedder(64))
    return index


def with_settings(base: Index, settings: SearchSettings) -> Index:
    base.search_settings = settings
    return base


def expected_ranking(
    index: Index, question: str, settings: SearchSettings
) -> list[tuple[int, float]]:
    """The hybrid ranking computed by hand from the two retrievers' candidate lists."""
    depth = settings.candidates
    lists = index.searcher.candidates(question, "hybrid", depth)
    weights = {"dense": settings.dense_weight, "bm25": settings.sparse_weight}
    fused: dict[int, float] = {}
    for name, (scores, ids) in lists.items():
        values = scores.astype(np.float64)
        if settings.fusion == "rrf":
            values = np.array([1 / (settings.rrf_k + r) for r in range(1, len(ids) + 1)])
        elif settings.fusion == "weighted" and len(values):
            span = values.max() - values.min()
            values = (values - values.min()) / span if span > 1e-12 else np.ones_like(values)
        elif name == "bm25" and len(values):
            values = values / values.max()
        for row, value in zip(ids.tolist(), values.tolist(), strict=True):
            fused[row] = fused.get(row, 0.0) + weights[name] * value
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


@pytest.mark.parametrize("fusion", FUSIONS)
def test_each_fusion_ranks_as_computed_by_hand(base: Index, fusion: str) -> None:
    # the first stage alone (the second stage re-scores convex fusion: test_evidence.py)
    settings = SearchSettings(fusion=fusion, rrf_k=30.0, evidence=False)  # type: ignore[arg-type]
    index = with_settings(base, settings)
    for question in QUESTIONS:
        want = expected_ranking(index, question, settings)
        got = index.searcher.rank(question, "hybrid", settings.candidates)
        assert [row for row, _ in got] == [row for row, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want])
        top_row, top_score = want[0]
        passage = index.search(question, 1)[0]
        chunk = index.chunks()[top_row]
        assert (passage.start, passage.end, passage.text) == (chunk.start, chunk.end, chunk.text)
        assert passage.score == pytest.approx(round(top_score, 6))


def test_fusions_score_on_their_own_scales(base: Index) -> None:
    question = "Artemis lunar surface"
    rrf = with_settings(base, SearchSettings(fusion="rrf", rrf_k=60.0)).search(question, 5)
    assert all(p.score <= (0.8 + 0.2) / 61 + 1e-6 for p in rrf)
    weighted = with_settings(base, SearchSettings(fusion="weighted")).search(question, 5)
    assert all(0.0 <= p.score <= 1.0 + 1e-6 for p in weighted)
    convex = with_settings(base, SearchSettings(fusion="convex")).search(question, 5)
    assert convex[0].score > rrf[0].score
    assert [p.score for p in rrf] != [p.score for p in convex]


def tie_groups(ranked: list[tuple[int, float]]) -> list[frozenset[int]]:
    """Rows grouped by equal score, best group first (the order within a tie is arbitrary)."""
    groups: list[tuple[float, set[int]]] = []
    for row, score in ranked:
        if groups and abs(groups[-1][0] - score) < 1e-9:
            groups[-1][1].add(row)
        else:
            groups.append((score, {row}))
    return [frozenset(rows) for _, rows in groups]


@pytest.mark.parametrize("fusion", FUSIONS)
def test_dense_only_weights_reproduce_dense_ranking(base: Index, fusion: str) -> None:
    settings = SearchSettings(  # the first stage alone, as above
        fusion=fusion,  # type: ignore[arg-type]
        dense_weight=1.0,
        sparse_weight=0.0,
        evidence=False,
    )
    searcher = with_settings(base, settings).searcher
    for question in QUESTIONS:
        hybrid = searcher.rank(question, "hybrid", 100)
        dense = searcher.rank(question, "dense", 100)
        if fusion == "rrf":  # scores from ranks: exactly the dense order
            assert [row for row, _ in hybrid] == [row for row, _ in dense]
        else:  # scores from cosines: the same order up to ties
            assert tie_groups(hybrid) == tie_groups(dense)


def test_search_settings_apply_to_a_loaded_index(base: Index, tmp_path: Path) -> None:
    base.search_settings = SearchSettings()
    base.save(tmp_path / "index")
    loaded = Index.load(tmp_path / "index", search_settings=SearchSettings(fusion="rrf"))
    assert loaded.search_settings.fusion == "rrf"
    assert loaded.searcher.settings.fusion == "rrf"
    question = QUESTIONS[0]
    want = with_settings(base, SearchSettings(fusion="rrf")).search(question, 3)
    assert loaded.search(question, 3) == want
