"""Touching passages near the top are shown as one (``SearchSettings.join_depth``)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import build_test_index
from tpd_qa.chunking import ChunkerSettings
from tpd_qa.errors import ConfigError
from tpd_qa.index import Index, SearchSettings
from tpd_qa.index.search import Ranked

WORDS = {
    "a1": "tokamak plasma confinement reached a record duration at the national facility",
    "a2": "engineers then measured the divertor heat load during the longest pulse",
    "a3": "the report credits the superconducting coils for the stable magnetic field",
    "b1": "semiconductor supply chains depend on lithography tools from a few vendors",
    "b2": "both governments agreed to share early warnings about chip shortages",
}
PARAGRAPH = {key: " ".join([value.capitalize()] * 3) + "." for key, value in WORDS.items()}
MARKDOWN = (
    "# Cooperation notes\n\n## Fusion\n\n"
    + "\n\n".join(PARAGRAPH[k] for k in ("a1", "a2", "a3"))
    + "\n\n## Chips\n\n"
    + "\n\n".join(PARAGRAPH[k] for k in ("b1", "b2"))
    + "\n"
)
OTHER = "# Other\n\n" + " ".join(["Quantum sensors for navigation were discussed."] * 4) + "\n"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    corpus = tmp_path_factory.mktemp("joining")
    (corpus / "notes.md").write_text(MARKDOWN, encoding="utf-8")
    (corpus / "other.md").write_text(OTHER, encoding="utf-8")
    chunker = ChunkerSettings(target_tokens=60, max_tokens=60, pack_tokens=8, min_chars=0)
    built, _ = build_test_index(corpus, chunker=chunker)
    return built


def rows(index: Index) -> dict[str, int]:
    """The row holding each paragraph (and ``other``: the other document's first row)."""
    state = index.searcher.state
    found = {}
    for row, chunk in enumerate(state.chunks):
        source = state.document_of(row).source
        if source == "other.md":
            found.setdefault("other", row)
            continue
        for key, text in PARAGRAPH.items():
            if text in chunk.text:
                assert key not in found, "each paragraph must be a row of its own"
                found[key] = row
    assert set(found) == {*PARAGRAPH, "other"}
    return found


def with_settings(index: Index, **changes: int) -> Index:
    searcher = index.searcher
    searcher.settings = dataclasses.replace(SearchSettings(), **changes)
    return index


def ranked(*rows_in_order: int) -> Ranked:
    return [(row, 1.0 - i / 10) for i, row in enumerate(rows_in_order)]


def test_paragraphs_are_separate_rows(index: Index) -> None:
    found = rows(index)
    assert found["a1"] + 1 == found["a2"] and found["a2"] + 1 == found["a3"]


def test_a_touching_neighbour_ranked_lower_joins_the_better_passage(index: Index) -> None:
    r = rows(index)
    searcher = with_settings(index).searcher
    passages = searcher.passages(ranked(r["a2"], r["other"], r["a1"]), 5)
    assert len(passages) == 2
    first, second = passages
    document = index.document("notes.md")
    assert first.text == document.text[first.start : first.end]
    assert PARAGRAPH["a1"] in first.text and PARAGRAPH["a2"] in first.text
    assert first.start == searcher.state.chunks[r["a1"]].start
    assert first.end == searcher.state.chunks[r["a2"]].end
    assert first.score == pytest.approx(1.0)  # the better row's score, at its rank
    assert first.section == searcher.state.chunks[r["a2"]].section
    assert second.source == "other.md"


def test_without_joining_every_row_is_its_own_passage(index: Index) -> None:
    r = rows(index)
    searcher = with_settings(index, join_depth=0).searcher
    passages = searcher.passages(ranked(r["a2"], r["other"], r["a1"]), 5)
    assert [p.text.strip() for p in passages[::2]] == [
        searcher.state.chunks[r["a2"]].text.strip(),
        searcher.state.chunks[r["a1"]].text.strip(),
    ]


def test_runs_grow_on_both_sides(index: Index) -> None:
    r = rows(index)
    searcher = with_settings(index).searcher
    (passage,) = searcher.passages(ranked(r["a2"], r["a3"], r["a1"]), 5)
    assert all(PARAGRAPH[key] in passage.text for key in ("a1", "a2", "a3"))


def test_k_counts_joined_passages(index: Index) -> None:
    r = rows(index)
    searcher = with_settings(index).searcher
    order = ranked(r["a1"], r["a2"], r["b1"], r["other"], r["b2"], r["a3"])
    passages = searcher.passages(order, 2)
    assert len(passages) == 2
    assert PARAGRAPH["a2"] in passages[0].text
    assert PARAGRAPH["b1"] in passages[1].text and PARAGRAPH["b2"] in passages[1].text


def test_only_the_first_join_depth_passages_join(index: Index) -> None:
    r = rows(index)
    searcher = with_settings(index, join_depth=2).searcher
    passages = searcher.passages(ranked(r["a1"], r["other"], r["a2"]), 5)
    assert len(passages) == 3
    searcher = with_settings(index, join_depth=3).searcher
    assert len(searcher.passages(ranked(r["a1"], r["other"], r["a2"]), 5)) == 2


def test_another_section_never_joins(index: Index) -> None:
    r = rows(index)
    assert r["a3"] + 1 == r["b1"]
    searcher = with_settings(index).searcher
    passages = searcher.passages(ranked(r["a3"], r["b1"]), 5)
    assert len(passages) == 2


def test_joined_text_stays_within_join_chars(index: Index) -> None:
    r = rows(index)
    chunks = index.searcher.state.chunks
    both = chunks[r["a2"]].end - chunks[r["a1"]].start
    searcher = with_settings(index, join_chars=both - 1).searcher
    assert len(searcher.passages(ranked(r["a1"], r["a2"]), 5)) == 2
    searcher = with_settings(index, join_chars=both).searcher
    assert len(searcher.passages(ranked(r["a1"], r["a2"]), 5)) == 1


def test_answer_is_the_best_ranked_rows_sentence(index: Index) -> None:
    r = rows(index)
    searcher = with_settings(index).searcher
    question = "What did engineers measure about the divertor heat load?"
    (passage,) = searcher.passages(ranked(r["a1"], r["a2"]), 5, question)
    row = searcher.state.chunks[r["a1"]]
    assert passage.answer_start is not None and passage.answer_end is not None
    assert row.start <= passage.answer_start < passage.answer_end <= row.end


def test_similarity_of_a_joined_passage_is_its_best_rows(index: Index) -> None:
    r = rows(index)
    searcher = with_settings(index).searcher
    question = "divertor heat load"
    (joined,) = searcher.passages(ranked(r["a1"], r["a2"]), 5)
    alone = with_settings(index, join_depth=0).searcher.passages(ranked(r["a1"], r["a2"]), 5)
    expected = max(index.similarity(question, alone))
    assert index.similarity(question, [joined]) == [pytest.approx(expected)]


def test_search_joins_by_default(index: Index) -> None:
    with_settings(index)
    question = " ".join(WORDS["a1"].split()[:4] + WORDS["a2"].split()[:4])
    passages = index.search(question, 5, mode="bm25")
    assert PARAGRAPH["a1"] in passages[0].text and PARAGRAPH["a2"] in passages[0].text
    for passage in passages:
        document = index.document(passage.source)
        assert document.text[passage.start : passage.end] == passage.text


@pytest.mark.parametrize("field", ["join_depth", "join_chars"])
def test_join_settings_are_validated(field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        SearchSettings(**{field: -1})


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=st.permutations(range(6)), k=st.integers(1, 6), depth=st.integers(0, 6))
def test_joined_passages_cover_the_top_without_overlap(
    index: Index, order: list[int], k: int, depth: int
) -> None:
    """Any ranking: passages are document slices, never overlap, stay within
    ``join_chars`` unless a single row, keep the rank order's scores, and every row among
    the first ``join_depth`` shows inside some passage once ``k`` leaves room for all."""
    searcher = with_settings(index, join_depth=depth).searcher
    state = searcher.state
    all_rows = list(range(len(state.chunks)))
    rows_in_order = [all_rows[i % len(all_rows)] for i in order]
    rows_in_order = list(dict.fromkeys(rows_in_order))
    passages = searcher.passages(ranked(*rows_in_order), k)
    assert len(passages) == min(k, len(passages))
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    for i, a in enumerate(passages):
        document = index.document(a.source)
        assert document.text[a.start : a.end] == a.text
        rows_inside = [
            row
            for row in all_rows
            if state.document_of(row).source == a.source
            and a.start <= state.chunks[row].start < a.end
        ]
        assert len(rows_inside) == 1 or a.end - a.start <= searcher.settings.join_chars
        for b in passages[i + 1 :]:
            assert a.source != b.source or a.end <= b.start or b.end <= a.start
    if k >= len(rows_in_order):
        for row in rows_in_order[: max(depth, 1)]:
            chunk = state.chunks[row]
            source = state.document_of(row).source
            assert any(
                p.source == source and p.start <= chunk.start and chunk.end <= p.end
                for p in passages
            )
