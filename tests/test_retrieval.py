"""Tests of Index.search: modes, filters, de-duplication, validation and Passage format."""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import pytest

from builders import build_test_index
from conftest import make_pdf
from tpd_qa.chunking import ChunkerSettings
from tpd_qa.embedding import HashEmbedder
from tpd_qa.errors import QueryError
from tpd_qa.index import MODES, Index, normalise_mode
from tpd_qa.records import Passage, format_citation

SEED_NAME = "us-japan-technology-prosperity-deal.txt"
PASSAGE_KEYS = [
    *("text", "score", "source", "title", "page", "section", "start", "end"),
    *("answer_start", "answer_end", "ocr", "ocr_confidence"),
]


@pytest.fixture
def index(corpus: Path, fake_embedder: HashEmbedder) -> Index:
    built, _ = build_test_index(corpus, embedder=fake_embedder)
    return built


def overlapping(passages: list[Passage]) -> list[tuple[Passage, Passage]]:
    return [
        (a, b)
        for i, a in enumerate(passages)
        for b in passages[i + 1 :]
        if a.source == b.source and a.start < b.end and b.start < a.end
    ]


# ---------------------------------------------------------------------------------------
# modes


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25", "semantic", "keyword", " Hybrid "])
def test_every_mode_returns_passages(index: Index, mode: str) -> None:
    passages = index.search("JT-60SA fusion facility commercialization", 4, mode=mode)
    assert 0 < len(passages) <= 4
    assert all(isinstance(p, Passage) for p in passages)
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    for passage in passages:
        document = index.document(passage.source)
        assert document.text[passage.start : passage.end] == passage.text
        assert passage.title == document.title


def test_aliases_match_canonical_modes(index: Index) -> None:
    question = "supply chain resilience for semiconductors"
    assert index.search(question, 5, mode="semantic") == index.search(question, 5, mode="dense")
    assert index.search(question, 5, mode="keyword") == index.search(question, 5, mode="bm25")
    assert normalise_mode("SEMANTIC") == "dense"
    assert normalise_mode("keyword") == "bm25"
    assert set(MODES) == {"hybrid", "dense", "bm25"}


def test_bm25_finds_exact_terms(index: Index) -> None:
    top = index.search("JT-60SA", 1, mode="bm25")[0]
    assert "JT-60SA" in top.text
    assert index.search("zzyzx qwertyuiop", 3, mode="bm25") == []


def test_hybrid_combines_both_rankings(index: Index) -> None:
    question = "lithography rare gases"
    hybrid = index.search(question, 3)
    assert hybrid[0].source == "sub/semis.txt"
    assert hybrid[0] == index.search(question, 3, mode="bm25")[0] or hybrid[0].source == (
        index.search(question, 3, mode="dense")[0].source
    )


def test_item_7_citation(index: Index) -> None:
    passage = index.search("JT-60SA facility", 1, sources=[SEED_NAME])[0]
    document = index.document(SEED_NAME)
    assert passage.source == SEED_NAME
    assert passage.section == "item 7"
    assert passage.page is None
    assert passage.start == document.text.index("7. In the field of nuclear fusion")
    assert passage.citation == (
        f"{SEED_NAME} \u00b7 item 7 \u00b7 chars {passage.start}\u2013{passage.end}"
    )
    assert passage.citation == f"{SEED_NAME} · item 7 · chars 3777–4018"


# ---------------------------------------------------------------------------------------
# de-duplication, filters, k


@pytest.fixture
def overlapping_index(tmp_path: Path, fake_embedder: HashEmbedder) -> Index:
    """An index whose chunks overlap (long paragraphs, one sentence of overlap)."""
    folder = tmp_path / "c"
    folder.mkdir()
    for name, topic in (("a.txt", "fusion"), ("b.txt", "quantum")):
        sentences = [
            f"Sentence {n} is about {topic} research and {topic} magnets in Naka."
            for n in range(60)
        ]
        (folder / name).write_text(" ".join(sentences) + "\n", encoding="utf-8")
    # overlap is off by default: ask for it, as a split paragraph may still have it
    chunker = ChunkerSettings(max_tokens=60, target_tokens=40, min_chars=0, overlap_sentences=1)
    built, _ = build_test_index(folder, embedder=fake_embedder, chunker=chunker)
    chunks = built.chunks()
    assert any(a.doc_id == b.doc_id and b.start < a.end for a, b in itertools.pairwise(chunks)), (
        "fixture must produce overlapping chunks"
    )
    return built


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_results_never_repeat_overlapping_text(overlapping_index: Index, mode: str) -> None:
    for question in ("fusion magnets Naka", "quantum research", "Sentence 30 fusion"):
        passages = overlapping_index.search(question, 100, mode=mode)
        assert passages
        assert overlapping(passages) == []
        spans = [(p.source, p.start, p.end) for p in passages]
        assert len(spans) == len(set(spans))


def test_sources_filter(index: Index) -> None:
    for mode in ("hybrid", "dense", "bm25"):
        passages = index.search("fusion tokamak JT-60SA", 10, mode=mode, sources=["notes.md"])
        assert passages and {p.source for p in passages} == {"notes.md"}
        both = index.search(
            "fusion", 10, mode=mode, sources=["notes.md", "sub/semis.txt", "missing.txt"]
        )
        assert {p.source for p in both} <= {"notes.md", "sub/semis.txt"}
    assert index.search("fusion", 5, sources=["missing.txt"]) == []
    assert index.search("fusion", 5, sources=[]) == []
    # a generator works as well as a list
    assert index.search("fusion", 5, sources=(s for s in ["notes.md"]))


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_k_larger_than_chunk_count(index: Index, mode: str) -> None:
    passages = index.search("fusion cooperation space quantum", 10_000, mode=mode)
    assert 0 < len(passages) <= index.chunk_count
    assert overlapping(passages) == []
    if mode == "dense":
        # the corpus chunks do not overlap, so dense search returns every chunk
        assert len(passages) == index.chunk_count


def test_k_limits_results(index: Index) -> None:
    for k in (1, 2, 3):
        assert len(index.search("cooperation", k)) == k


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "\x00\x01"])
def test_empty_question(index: Index, question: str) -> None:
    with pytest.raises(QueryError, match="empty"):
        index.search(question, 3)


@pytest.mark.parametrize("k", [0, -1, True, 2.5, "3", None])
def test_bad_k(index: Index, k: object) -> None:
    with pytest.raises(QueryError):
        index.search("fusion", k)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["fuzzy", "", "bm26"])
def test_unknown_mode(index: Index, mode: str) -> None:
    with pytest.raises(QueryError, match="mode"):
        index.search("fusion", 3, mode=mode)


def test_non_text_question(index: Index) -> None:
    with pytest.raises(QueryError):
        index.search(b"fusion", 3)  # type: ignore[arg-type]


def test_very_long_question_is_accepted(index: Index) -> None:
    passages = index.search("fusion " * 5000, 3)
    assert passages and len(passages) <= 3


def test_search_does_not_load_a_model_for_bm25(corpus: Path, tmp_path: Path) -> None:
    """A keyword search on a loaded index never creates an embedder."""
    built, _ = build_test_index(corpus, embedder=HashEmbedder())
    built.save(tmp_path / "i")

    def refuse(name: str) -> HashEmbedder:
        raise AssertionError("bm25 search must not load a model")

    loaded = Index.load(tmp_path / "i", embedder_factory=refuse)
    assert loaded.search("JT-60SA", 2, mode="bm25")
    with pytest.raises(AssertionError):
        loaded.search("JT-60SA", 2, mode="dense")


# ---------------------------------------------------------------------------------------
# Passage format


def test_passage_fields_and_dict(index: Index) -> None:
    assert [f.name for f in dataclasses.fields(Passage)] == PASSAGE_KEYS
    passage = index.search("Artemis lunar", 1)[0]
    data = passage.to_dict()
    assert list(data) == [*PASSAGE_KEYS, "citation"]
    assert data["citation"] == passage.citation
    assert isinstance(data["score"], float)
    assert data["text"] == passage.text and data["source"] == passage.source


def test_citation_formats() -> None:
    assert format_citation("a.txt", None, None, 0, 10) == "a.txt · chars 0–10"
    assert (
        format_citation("x.pdf", 2, "Intro › Scope", 5, 9)
        == "x.pdf · p. 2 · Intro › Scope · chars 5–9"
    )
    assert format_citation("x.pdf", 2, None, 5, 9) == "x.pdf · p. 2 · chars 5–9"


def test_pdf_passage_cites_its_page(tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    make_pdf(
        folder / "report.pdf",
        [
            "Overview of the technology cooperation between the two countries. " * 3,
            "The Kagoshima photonics testbed opened in spring with forty researchers. " * 3,
            "Closing remarks on governance and future meetings of the council. " * 3,
        ],
    )
    built, report = build_test_index(folder, embedder=fake_embedder)
    assert report.counts()["added"] == 1
    passage = built.search("Kagoshima photonics testbed", 1, mode="bm25")[0]
    assert passage.source == "report.pdf"
    assert passage.page == 2
    assert "Kagoshima" in passage.text
    assert re.fullmatch(r"report\.pdf · p\. 2 · (.+ · )?chars \d+–\d+", passage.citation)
    assert passage.citation.endswith(f"chars {passage.start}–{passage.end}")
    info = built.documents()[0]
    assert info.pages == 3 and info.kind == "pdf"
