"""The second stage: evidence features, query kinds, answer spans and their use in search."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import build_test_index
from tpd_qa.evidence import (
    FEATURES,
    Evidence,
    EvidenceWeights,
    PassageEvidence,
    default_weights,
    idf_of_texts,
    query_kind,
)
from tpd_qa.index import SearchSettings
from tpd_qa.index.search import LocalCandidates, Searcher
from tpd_qa.query import Query
from tpd_qa.sparse import SparseIndex, has_cjk, keyword_keys, keywords
from tpd_qa.text import sentence_spans


def _flat_idf(keys: list[str]) -> np.ndarray:
    return np.ones(len(keys))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Who signed the memorandum?", "question"),
        ("when did chopin leave warsaw", "question"),
        ("How will they cooperate on quantum technology", "question"),
        ("量子技術の協力は？", "cjk"),
        ("fusion magnets JT-60SA", "statement"),
        ("核融合の研究施設はどこですか", "cjk"),
        ("JT-60SAは何のための施設ですか", "cjk"),
        ("Vitamin D deficiency raises the risk of fractures.", "statement"),
    ],
)
def test_query_kind(text: str, kind: str) -> None:
    assert query_kind(text) == kind


def test_best_sentence_is_the_answer_span() -> None:
    text = (
        "The deal covers many fields. Fusion research will use the JT-60SA facility in Naka. "
        "Space work continues."
    )
    [found] = Evidence(_flat_idf).measure("Which facility supports fusion research?", [0], [text])
    assert text[found.answer_start : found.answer_end] == (
        "Fusion research will use the JT-60SA facility in Naka."
    )
    # keys facil, support, fusion, research ("which" asks, it is not evidence): three of
    # four in that sentence, none elsewhere
    assert found.sentence == pytest.approx(0.75) == found.coverage
    assert found.bigram == pytest.approx(1 / 3)  # "fusion research" is adjacent there


def test_concentrated_evidence_beats_spread_evidence() -> None:
    spread = "Fusion matters. The facility is large. Research continues elsewhere."
    focused = "Fusion research uses the facility. Other topics follow here."
    a, b = Evidence(_flat_idf).measure("fusion research facility", [0, 1], [spread, focused])
    assert a.coverage == b.coverage == pytest.approx(1.0)
    assert b.sentence > a.sentence


def test_idf_weights_rare_words_more() -> None:
    idf = {"fusion": 0.1, "jt": 3.0, "60sa": 3.0}

    def weights(keys: list[str]) -> np.ndarray:
        return np.array([idf.get(k, 1.0) for k in keys])

    [found] = Evidence(weights).measure("fusion JT-60SA", [0], ["The JT-60SA tokamak."])
    assert found.coverage == pytest.approx(6.0 / 6.1)


def test_question_without_keywords_gets_no_evidence() -> None:
    [found] = Evidence(_flat_idf).measure("what is it?", [0], ["Some text. More text."])
    assert (found.coverage, found.sentence, found.bigram) == (0.0, 0.0, 0.0)
    assert (found.answer_start, found.answer_end) == (0, len("Some text."))


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300), st.text(max_size=80))
def test_features_are_bounded_and_span_inside(text: str, question: str) -> None:
    [found] = Evidence(_flat_idf).measure(question, [0], [text])
    for value in (found.coverage, found.sentence, found.bigram):
        assert 0.0 <= value <= 1.0 + 1e-9
    assert found.sentence <= found.coverage + 1e-9
    assert 0 <= found.answer_start <= found.answer_end <= len(text)


def test_shipped_weights_are_plain_json() -> None:
    weights = default_weights()
    data = json.loads(
        (Path(__file__).parents[1] / "src/tpd_qa/data/evidence.json").read_text(encoding="utf-8")
    )
    assert set(data["question"]) == set(FEATURES) == set(data["statement"]) == set(data["cjk"])
    assert len(weights.question) == len(FEATURES) and weights.depth >= 1
    with pytest.raises(ValueError):
        EvidenceWeights(question=(1.0,), statement=(1.0,) * len(FEATURES))


def test_search_marks_the_answer_sentence(corpus: Path) -> None:
    index, _ = build_test_index(corpus)
    question = "Which facility will help commercialize fusion?"
    for mode in ("hybrid", "dense", "bm25"):
        for passage in index.search(question, 3, mode=mode):
            assert passage.answer_start is not None and passage.answer_end is not None
            assert passage.start <= passage.answer_start < passage.answer_end <= passage.end
            assert passage.answer in passage.text and passage.answer.strip()
            data = passage.to_dict()
            assert (data["answer_start"], data["answer_end"]) == (
                passage.answer_start,
                passage.answer_end,
            )
    top = index.search(question, 1)[0]
    assert "JT-60SA" in top.answer


def _notes(folder: Path, **texts: str) -> Path:
    """A corpus folder holding ``name.txt`` for each keyword argument."""
    folder.mkdir()
    for name, text in texts.items():
        (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    return folder


def test_second_stage_prefers_the_passage_with_the_answer_sentence(tmp_path: Path) -> None:
    # Both notes hold every keyword of the question; only one says it in one sentence.
    corpus = _notes(
        tmp_path / "corpus",
        spread="Fusion magnets matter. Suppliers build. "
        "Fusion suppliers grow. Magnets build trust.",
        focused="Several topics are listed in the annex of the deal. "
        "Japanese suppliers will build the fusion magnets. "
        "Other work follows later in the year.",
    )
    index, _ = build_test_index(corpus)
    question = "Who will build the fusion magnets?"
    plain = Searcher(index.state, SearchSettings(evidence=False), index.searcher.query_vector)
    first_stage = plain.search(Query.parse(question, 2))
    second_stage = index.search(question, 2)
    assert second_stage[0].source == "focused.txt"
    assert second_stage[0].answer == "Japanese suppliers will build the fusion magnets."
    # the evidence, not the first stage alone, put it first
    assert first_stage[0].source == "spread.txt"


def test_cli_shows_the_answer_sentence(
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tpd_qa.cli import main

    monkeypatch.setenv("TPD_QA_MODEL", "hash")
    index_dir = tmp_path / "index"
    assert main(["index", "--corpus", str(corpus), "--index", str(index_dir), "--quiet"]) == 0
    capsys.readouterr()
    question = "Which facility will help commercialize fusion?"
    assert main(["ask", question, "--index", str(index_dir), "-k", "5", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert main(["ask", question, "--index", str(index_dir), "-k", "5"]) == 0
    out = capsys.readouterr().out
    shown = " ".join(line.strip() for line in out.splitlines())
    partial = [r for r in rows if (r["answer_start"], r["answer_end"]) != (r["start"], r["end"])]
    assert partial  # some passage has more than its answer sentence
    for row in partial:
        answer = row["text"][row["answer_start"] - row["start"] : row["answer_end"] - row["start"]]
        assert "» " + " ".join(answer.split())[:40] in shown


def test_idf_without_a_local_keyword_index_matches_bm25() -> None:
    from tpd_qa.evidence import idf_of_texts
    from tpd_qa.sparse import SparseIndex

    texts = [
        "Fusion magnets and fuel cycles.",
        "The JT-60SA tokamak in Naka.",
        "Fusion research in Japan; 核融合の研究.",
        "Space cooperation on lunar missions.",
    ]
    keys = ["fusion", "magnet", "naka", "核融", "unknown"]
    assert idf_of_texts(texts)(keys) == pytest.approx(SparseIndex.build(texts).idf(keys))


# ---------------------------------------------------------------------- speed without change

_ASKING = frozenset({"who", "whom", "whose", "what", "which", "when", "where", "why", "how"})


def _reference_measure(
    idf: Callable[[Sequence[str]], np.ndarray], question: str, text: str
) -> tuple[float, float, float, int, int]:
    """The second stage as first written (offsets of every key, sets rebuilt each time):
    the faster :class:`Evidence` must give exactly these numbers."""
    query_keys = list(dict.fromkeys(k for _s, _e, k in keywords(question) if k not in _ASKING))
    weights = idf(query_keys) if query_keys else np.zeros(0)
    total = float(weights.sum())
    found = keywords(text)
    sentences = [
        (start, end, frozenset(key for s, e, key in found if s >= start and e <= end))
        for start, end in sentence_spans(text) or [(0, len(text))]
    ]
    if total <= 0:
        first = sentences[0] if sentences else (0, len(text), None)
        return (0.0, 0.0, 0.0, first[0], first[1])
    present = {key for _s, _e, key in found}
    coverage = sum(w for k, w in zip(query_keys, weights, strict=True) if k in present)
    best, span = -1.0, (0, len(text))
    for start, end, keys in sentences:
        value = sum(w for k, w in zip(query_keys, weights, strict=True) if k in keys)
        if value > best:
            best, span = value, (start, end)
    pairs = set(itertools.pairwise(query_keys))
    adjacent = set(itertools.pairwise(key for _s, _e, key in found))
    bigram = len(pairs & adjacent) / len(pairs) if pairs else 0.0
    return (float(coverage / total), float(max(best, 0.0) / total), bigram, *span)


def _as_tuple(found: PassageEvidence) -> tuple[float, float, float, int, int]:
    return (found.coverage, found.sentence, found.bigram, found.answer_start, found.answer_end)


def test_faster_evidence_gives_the_same_scores_on_a_fixed_sample() -> None:
    """Memorandum passages (and a Japanese one) against the memorandum questions: every
    feature and span equal to the first implementation's, bit for bit."""
    root = Path(__file__).parents[1]
    memo = (root / "corpus" / "us-japan-technology-prosperity-deal.txt").read_text("utf-8")
    texts = [p for p in memo.split("\n") if p.strip()] + [
        *(memo[i : i + 700] for i in range(0, len(memo), 350)),  # cut mid-word too
        "核融合の研究はJT-60SAで行う。量子技術の協力も進む。Fusion magnets 7. Dr. Smith.",
        "",
        "   \n  ",
    ]
    questions = [
        json.loads(line)["question"]
        for line in (root / "data" / "memorandum_qa.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ] + ["核融合の研究施設はどこですか", "fusion magnets JT-60SA", "what is it?"]
    idf = idf_of_texts(texts)
    evidence = Evidence(idf)
    compared = 0
    for question in questions:
        measured = evidence.measure(question, list(range(len(texts))), texts)
        for text, found in zip(texts, measured, strict=True):
            assert _as_tuple(found) == _reference_measure(idf, question, text), (question, text)
            compared += 1
    assert compared == len(questions) * len(texts) > 1000


@settings(max_examples=120, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("abcDEF xyz.!?\n\"')7éİß核融合研究。-")),
        max_size=200,
    ),
    st.text(alphabet=st.sampled_from(list("abcDEF xyz?核融合")), max_size=40),
)
def test_faster_evidence_matches_the_reference_on_any_text(text: str, question: str) -> None:
    [found] = Evidence(_flat_idf).measure(question, [0], [text])
    assert _as_tuple(found) == _reference_measure(_flat_idf, question, text)
    if not has_cjk(text):
        assert keyword_keys([text]) == [[key for _s, _e, key in keywords(text)]]


def test_cosine_across_scripts_counts_less_with_an_english_only_model(tmp_path: Path) -> None:
    corpus = _notes(
        tmp_path / "corpus",
        memo="The White House Office of Science and Technology Policy signed the memorandum.",
        summary="覚書に署名したのは、米国側がホワイトハウスの科学技術政策局である。",
    )
    index, _ = build_test_index(corpus, sentences=False)  # the passages' cosines alone
    state = index.state
    japanese = next(
        r for r in range(len(state.chunks)) if state.document_of(r).source == "summary.txt"
    )
    # an English-only model embeds Japanese text near anything: here, exactly on the question
    searcher = Searcher(state, SearchSettings(), lambda _question: state.vectors[japanese])
    question = Query.parse("Which office signed the memorandum?", 2)
    assert [p.source for p in searcher.search(question)] == ["memo.txt", "summary.txt"]
    # counting the cosine across scripts (a multilingual model) puts the Japanese one first
    searcher.evidence_weights = dataclasses.replace(searcher.evidence_weights, cross_script=1.0)
    assert searcher.search(question)[0].source == "summary.txt"
    # a Japanese question is keyword-ranked: the cosine has no weight either way
    assert query_kind("署名したのはどこですか") == "cjk"


def test_cross_script_weight_is_checked() -> None:
    with pytest.raises(ValueError, match="cross_script"):
        dataclasses.replace(default_weights(), cross_script=2.0)
    assert 0.0 < default_weights().cross_script < 1.0


def test_second_stage_measures_evidence_for_depth_candidates_only(corpus: Path) -> None:
    index, _ = build_test_index(corpus)
    searcher = index.searcher
    question = "Which facility will help commercialize fusion?"
    scored = searcher.candidates(question, "hybrid", 40)
    fused = searcher.fuse(scored)
    assert len(fused) > 4
    measured: list[int] = []
    measure = searcher.evidence.measure

    def spy(question: str, rows: Sequence[int], texts: Sequence[str]) -> list[PassageEvidence]:
        measured.extend(rows)
        return measure(question, rows, texts)

    searcher.evidence.measure = spy  # type: ignore[method-assign]
    for depth in (1, 3, len(fused)):
        measured.clear()
        searcher.evidence_weights = dataclasses.replace(default_weights(), depth=depth)
        ranked = searcher.second_stage(question, scored, fused)
        assert len(measured) == depth
        assert sorted(row for row, _ in ranked) == sorted(row for row, _ in fused)
        assert measured == [row for row, _ in fused[:depth]]
        scores = [score for _, score in ranked]
        assert scores == sorted(scores, reverse=True)


def _paraphrase_searcher(tmp_path: Path) -> tuple[Searcher, Query]:
    """A searcher over a summit note and a ministry note for a question that paraphrases
    the ministry note but shares one rare word ("Tokyo") with the summit note; the question
    vector leans towards the ministry note (as a model's would), by less than that word's
    keyword evidence weighs in full."""
    corpus = _notes(
        tmp_path / "corpus",
        summit="The leaders met at a summit in Tokyo and spoke about the alliance.",
        ministry="The Ministry of Internal Affairs and Communications leads the Japanese side.",
        fusion="Fusion magnets are built by suppliers for the reactor programme.",
        quantum="Quantum computers need cryogenic supply chains and trained staff.",
    )
    index, _ = build_test_index(corpus, sentences=False)
    state = index.state
    row = {state.document_of(r).source: r for r in range(len(state.chunks))}
    towards = 0.6 * state.vectors[row["ministry.txt"]] + 0.4 * state.vectors[row["summit.txt"]]
    towards /= np.linalg.norm(towards)
    searcher = Searcher(state, SearchSettings(), lambda _question: towards)
    question = Query.parse("Which Tokyo government department is the counterpart for telecom?", 2)
    return searcher, question


def test_keyword_evidence_counts_less_when_no_candidate_shares_the_questions_words(
    tmp_path: Path,
) -> None:
    searcher, question = _paraphrase_searcher(tmp_path)
    assert default_weights().keyword_trust > 0
    assert searcher.search(question)[0].source == "ministry.txt"
    # counting the one shared word in full, as before, puts the summit first
    searcher.evidence_weights = dataclasses.replace(default_weights(), keyword_trust=0.0)
    assert searcher.search(question)[0].source == "summit.txt"


def test_keyword_evidence_counts_in_full_when_a_candidate_shares_enough(tmp_path: Path) -> None:
    searcher, _ = _paraphrase_searcher(tmp_path)
    question = "Which ministry leads the Japanese side of internal affairs and communications?"
    scored = searcher.candidates(question, "hybrid", 10)
    fused = searcher.fuse(scored)
    ranked = {}
    for trust in (0.0, default_weights().keyword_trust):
        searcher.evidence_weights = dataclasses.replace(default_weights(), keyword_trust=trust)
        ranked[trust] = searcher.second_stage(question, scored, fused)
    assert ranked[0.0] == ranked[default_weights().keyword_trust]
    assert searcher.state.document_of(ranked[0.0][0][0]).source == "ministry.txt"


def test_keyword_trust_is_checked_and_read_from_json() -> None:
    with pytest.raises(ValueError, match="keyword_trust"):
        dataclasses.replace(default_weights(), keyword_trust=1.5)
    data = {
        kind: dict(zip(FEATURES, (1.0,) * len(FEATURES), strict=True))
        for kind in ("question", "statement", "cjk")
    }
    assert EvidenceWeights.from_json(json.dumps(data)).keyword_trust == 0.0
    data["keyword_trust"] = 0.25  # type: ignore[assignment]
    assert EvidenceWeights.from_json(json.dumps(data)).keyword_trust == 0.25


def test_document_feature_is_the_share_the_whole_document_holds() -> None:
    documents = [
        "Vitamin D was given.\n\nMuch later: hip fractures fell.",
        "Vitamin D was given. Nothing else was measured.",
        "Sleep was measured.",
    ]
    keys = [set(keyword_keys([text])[0]) for text in documents]
    asked: list[list[str]] = []

    def holds(wanted: Sequence[str]) -> np.ndarray:
        asked.append(list(wanted))
        return np.array([[key in held for held in keys] for key in wanted], dtype=bool)

    evidence = Evidence(_flat_idf)
    claim = "Vitamin D prevents hip fractures"  # keys: vitamin, prevent, hip, fractur
    assert evidence.documents(claim, holds).tolist() == [0.75, 0.25, 0.0]
    assert asked == [["vitamin", "prevent", "hip", "fractur"]]
    no_keys = evidence.documents("the of and", lambda wanted: np.zeros((0, 3), dtype=bool))
    assert no_keys.tolist() == [0.0, 0.0, 0.0]
    # rarer words weigh more, as in the passage features
    weighted = Evidence(idf_of_texts(documents)).documents("vitamin sleep", holds)
    assert weighted[2] > weighted[0] > 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["fusion", "magnets", "quantum", "chips", "cables", "of"])),
        min_size=1,
        max_size=12,
    ),
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=6),
    st.booleans(),
)
def test_keyword_index_tells_which_row_ranges_hold_a_key(
    rows: list[list[str]], ranges: list[tuple[int, int]], scrambled: bool
) -> None:
    texts = [" ".join(words) for words in rows]
    sparse = SparseIndex.build(texts)
    if scrambled:  # postings not in row order (another bm25s version): sorted once, same answer
        scores = sparse._retriever.scores
        starts_of = scores["indptr"]
        for token in range(len(starts_of) - 1):
            segment = slice(starts_of[token], starts_of[token + 1])
            scores["indices"][segment] = scores["indices"][segment][::-1].copy()
    starts = np.array([min(a, b, len(texts)) for a, b in ranges], dtype=np.int64)
    ends = np.array([min(max(a, b), len(texts)) for a, b in ranges], dtype=np.int64)
    keys = ["fusion", "magnet", "quantum", "chip", "cabl", "absent"]
    held = sparse.holding(keys, starts, ends)
    analysed = [set(keyword_keys([text])[0]) for text in texts]
    expected = [
        [
            any(key in analysed[row] for row in range(start, end))
            for start, end in zip(starts, ends, strict=True)
        ]
        for key in keys
    ]
    assert held.tolist() == expected


def _claim_searcher(tmp_path: Path) -> tuple[Searcher, str]:
    """Two documents opening with the same paragraph, cut into several passages; only
    the second says, three paragraphs later, what the claim's other words say."""
    opening = "Vitamin D supplements were given to older adults in the trial."
    filler = "\n\n".join(
        f"Paragraph {n} describes the recruitment, the visits and the forms used. " * 4
        for n in range(6)
    )
    corpus = _notes(
        tmp_path / "corpus",
        one=f"{opening}\n\n{filler}\n\nSleep quality was unchanged over the year.",
        two=f"{opening}\n\n{filler}\n\nHip fractures fell by a third over the year.",
    )
    index, _ = build_test_index(corpus)
    state = index.state
    assert len(state.chunks) > 2 * 2, "each document must span several passages"
    first = next(r for r in range(len(state.chunks)) if opening in state.chunks[r].text)
    searcher = Searcher(state, SearchSettings(), lambda _question: state.vectors[first])
    return searcher, "Vitamin D supplements prevent hip fractures in older adults."


def test_a_claim_prefers_the_passage_whose_document_holds_its_other_words(
    tmp_path: Path,
) -> None:
    searcher, claim = _claim_searcher(tmp_path)
    assert query_kind(claim) == "statement"
    assert default_weights().statement[FEATURES.index("document")] > 0
    assert searcher.search(Query.parse(claim, 1))[0].source == "two.txt"
    # without the document feature the two openings tie and the first document wins
    weights = default_weights()
    no_document = list(weights.statement)
    no_document[FEATURES.index("document")] = 0.0
    searcher.evidence_weights = dataclasses.replace(weights, statement=tuple(no_document))
    assert searcher.search(Query.parse(claim, 1))[0].source == "one.txt"


def test_document_feature_without_local_postings_matches_the_keyword_index(
    tmp_path: Path,
) -> None:
    searcher, claim = _claim_searcher(tmp_path)
    state = searcher.state
    rows = np.arange(len(state.chunks))
    local = searcher.document_coverage(claim, rows)
    # a store whose keyword search lives elsewhere (Milvus) analyses each document instead
    remote_state = dataclasses.replace(state, sparse=None, candidates=LocalCandidates(state))
    remote = Searcher(remote_state, searcher.settings, searcher.query_vector)
    assert remote.document_coverage(claim, rows).tolist() == pytest.approx(local.tolist())
    assert sorted(set(local.tolist())) == [pytest.approx(local.min()), local.max()]
    assert 0 < local.min() < local.max() < 1  # "prevent" is in neither document
