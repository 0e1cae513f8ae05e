"""Evaluation: dataset parsing, metric computation, the eval command, and quality floors."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest

from tpd_qa.chunking import Chunker
from tpd_qa.cli import main
from tpd_qa.errors import ConfigError
from tpd_qa.evaluation import (
    QaItem,
    aggregate_documents,
    beir_document,
    evaluate_beir,
    evaluate_qa,
    format_table,
    load_beir,
    load_qa,
    passage_matches,
    qa_judgement,
    read_qrels,
    score_runs,
)
from tpd_qa.index import Index, IndexSettings

ROOT = Path(__file__).resolve().parents[1]
QA_SET = ROOT / "data" / "memorandum_qa.jsonl"
MEMORANDUM = ROOT / "corpus" / "us-japan-technology-prosperity-deal.txt"
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
DOCUMENTS_SET = ROOT / "data" / "documents_qa.jsonl"
# Real documents Debian installs on this kind of host (bench/bench_documents.py).
REAL_DOCUMENTS = (
    Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
    Path("/usr/share/doc/python3/python-policy.html"),
    Path("/usr/share/doc/zlib1g-dev/examples/zlib_how.html"),
)
_NO_REAL_DOCUMENTS = not all(path.is_file() for path in REAL_DOCUMENTS)

# Floors for the memorandum set with the bundled model, hybrid mode. Measured with the
# default settings: hit@1 0.762 (32 of 42), MRR@10 0.850, hit@5 1.0; the floors allow two
# or three questions to move (bf16 vs float32 numerics, small chunking changes).
MEMO_HIT1_FLOOR = 0.70
MEMO_MRR_FLOOR = 0.80


def _write_beir(folder: Path) -> Path:
    """A four-document BEIR folder with CRLF qrels, a header, and a zero judgement."""
    (folder / "qrels").mkdir(parents=True)
    docs = [
        ("d1", "Tokamak magnets", "Superconducting magnets confine the fusion plasma."),
        ("d2", "Lunar rovers", "Rovers explore the south pole of the Moon for water ice."),
        ("d3", "Chip packaging", "Advanced packaging stacks dies for faster semiconductors."),
        ("d4", "", "Submarine cables carry most intercontinental internet traffic."),
    ]
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for doc_id, title, text in docs:
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    queries = [
        ("1", "fusion plasma magnets"),
        ("2", "moon water ice"),
        ("3", "undersea cables"),
        ("4", "not judged in test"),
    ]
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as handle:
        for qid, text in queries:
            handle.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (folder / "qrels" / "test.tsv").write_bytes(
        b"query-id\tcorpus-id\tscore\r\n1\td1\t1\r\n2\td2\t1\r\n3\td4\t1\r\n3\td3\t0\r\n"
    )
    (folder / "qrels" / "train.tsv").write_bytes(b"query-id\tcorpus-id\tscore\n4\td3\t1\n")
    return folder


# ---------------------------------------------------------------------- parsing


def test_read_qrels_handles_crlf_header_and_zero_scores(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "beir")
    qrels = read_qrels(folder / "qrels" / "test.tsv")
    assert qrels == {"1": {"d1": 1}, "2": {"d2": 1}, "3": {"d4": 1}}


def test_read_qrels_rejects_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("query-id\tcorpus-id\tscore\n1\td1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.tsv:2"):
        read_qrels(path)


def test_load_beir_keeps_judged_queries_and_title_heading(tmp_path: Path) -> None:
    dataset = load_beir(_write_beir(tmp_path / "beir"))
    assert set(dataset.queries) == {"1", "2", "3"}
    assert len(dataset.documents) == 4
    first = dataset.documents[0]
    assert first.source == "d1" and first.title == "Tokamak magnets"
    heading = first.headings[0]
    assert first.text[heading.start : heading.end] == "Tokamak magnets"
    assert first.text.endswith("fusion plasma.")
    untitled = dataset.documents[3]
    assert untitled.headings == () and untitled.text.startswith("Submarine")
    train = load_beir(tmp_path / "beir", "train")
    assert train.queries == {"4": "not judged in test"}
    assert set(load_beir(tmp_path / "beir", limit=2).queries) == {"1", "2"}


def test_load_beir_reports_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="qrels"):
        load_beir(_write_beir(tmp_path / "beir"), "dev")


def test_beir_document_hash_includes_the_id() -> None:
    assert beir_document("a", "T", "x").sha256 != beir_document("b", "T", "x").sha256


def test_load_qa_parses_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(
        '{"question": "Q?", "source": "a.txt", "evidence": "ev", "page": 2}\n\n'
        '{"id": "x", "question": "R?", "source": "b.txt", "evidence": "e2", "tags": ["hard"]}\n',
        encoding="utf-8",
    )
    items = load_qa(path)
    assert items[0] == QaItem("Q?", "a.txt", "ev", 2, "q1")
    assert items[1].id == "x" and items[1].tags == ("hard",)
    for bad, message in [
        ('{"question": "Q", "source": "a"}', "evidence"),
        ('{"question": "Q", "source": "a", "evidence": "e", "page": 0}', "page"),
        ("[1, 2]", "JSON object"),
        ("{oops", "not JSON"),
        ('{"id": "a", "question": "Q", "source": "s", "evidence": "e"}\n' * 2, "repeats"),
    ]:
        path.write_text(bad + "\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            load_qa(path)


def test_passage_matches_is_whitespace_insensitive_and_checks_source_and_page() -> None:
    item = QaItem("q", "a.txt", "golden   age", page=3)
    assert passage_matches("a.txt", "a new golden\nage began", 3, item)
    assert not passage_matches("b.txt", "a new golden age", 3, item)
    assert not passage_matches("a.txt", "a new golden age", 2, item)
    assert not passage_matches("a.txt", "a new age", 3, item)


# ---------------------------------------------------------------------- metrics


def test_score_runs_matches_hand_computed_values() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}, "q3": {"z": 1}}
    run = {"q1": {"x": 3.0, "a": 2.0, "y": 1.0}, "q2": {"c": 2.0, "w": 1.0}, "q3": {}}
    scores = score_runs(qrels, run, ["ndcg@10", "mrr@10", "recall@10", "hit@1", "hit@5"])
    ideal_q2 = 1 + 1 / math.log2(3)
    expected_ndcg = (1 / math.log2(3) + 1 / ideal_q2 + 0) / 3
    assert scores["ndcg@10"] == pytest.approx(expected_ndcg)
    assert scores["mrr@10"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert scores["recall@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert scores["hit@1"] == pytest.approx(1 / 3)
    assert scores["hit@5"] == pytest.approx(2 / 3)
    per_query = score_runs(qrels, run, ["mrr@10"], per_query=True)
    assert per_query["mrr@10"] == pytest.approx([0.5, 1.0, 0.0])


def test_qa_judgement_credits_only_the_first_matching_passage() -> None:
    items = [QaItem("q", "a.txt", "needle", id="1"), QaItem("r", "a.txt", "absent", id="2")]
    results = {
        "1": [
            ("b.txt", "needle", None),
            ("a.txt", "hay", None),
            ("a.txt", "a needle", None),
            ("a.txt", "needle again", None),
        ],
        "2": [],
    }
    qrels, run = qa_judgement(items, results)
    scores = score_runs(qrels, run, ["mrr@10", "hit@3", "ndcg@10"])
    assert scores["mrr@10"] == pytest.approx((1 / 3 + 0) / 2)
    assert scores["hit@3"] == pytest.approx(0.5)
    assert scores["ndcg@10"] == pytest.approx((1 / math.log2(4)) / 2)


def test_aggregate_documents_keeps_each_documents_best_rank() -> None:
    ranked = aggregate_documents([("d2", 0.9), ("d1", 0.8), ("d2", 0.7), ("d3", 0.1)], depth=10)
    assert list(ranked) == ["d2", "d1", "d3"]
    assert ranked["d2"] > ranked["d1"] > ranked["d3"]


def test_format_table_lists_every_mode() -> None:
    table = format_table({"bm25": {"ndcg@10": 0.5}, "hybrid": {"ndcg@10": 0.75}}, ["ndcg@10"])
    assert "bm25" in table and "0.7500" in table and table.count("\n") == 3


def test_format_table_shows_character_counts_whole() -> None:
    table = format_table({"hybrid": {"hit@1": 0.5, "chars@1": 612.5}}, ["hit@1", "chars@1"])
    assert "0.5000" in table and " 612 " in table + " " and "612.5" not in table


# ---------------------------------------------------------------------- end to end (fake model)


def test_evaluate_beir_with_fake_embedder(tmp_path: Path, fake_embedder) -> None:
    dataset = load_beir(_write_beir(tmp_path / "beir"))
    index = Index.from_documents(dataset.documents, embedder=fake_embedder)
    assert index.chunk_count == 4
    results = evaluate_beir(index, dataset, ["bm25", "dense", "hybrid"])
    assert results["bm25"]["ndcg@10"] == pytest.approx(1.0)
    for row in results.values():
        assert 0.0 <= row["ndcg@10"] <= 1.0 and 0.0 <= row["hit@1"] <= row["hit@10"] <= 1.0


def test_from_documents_rejects_duplicates(fake_embedder) -> None:
    document = beir_document("d1", "T", "body")
    with pytest.raises(ValueError, match="duplicate"):
        Index.from_documents([document, document], embedder=fake_embedder)


def test_eval_command_on_a_qa_file(tmp_path: Path, corpus: Path, capsys) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps(
            {
                "question": "largest superconducting tokamak",
                "source": "notes.md",
                "evidence": "JT-60SA tokamak in Naka",
            }
        )
        + "\n"
        + json.dumps(
            {
                "question": "lithography tools and rare gases",
                "source": "sub/semis.txt",
                "evidence": "rare gases",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    status = main(["eval", str(qa), "--corpus", str(corpus), "--model", "hash", "--json"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "qa" and report["queries"] == 2
    assert set(report["results"]) == {"bm25", "dense", "hybrid"}
    assert report["results"]["bm25"]["hit@1"] == pytest.approx(1.0)
    assert (
        main(["eval", str(qa), "--corpus", str(corpus), "--model", "hash", "--modes", "bm25"]) == 0
    )
    assert "hit@1" in capsys.readouterr().out


def test_eval_command_on_a_beir_folder_with_cache(tmp_path: Path, capsys) -> None:
    folder = _write_beir(tmp_path / "beir")
    cache = tmp_path / "cache"
    argv = ["eval", str(folder), "--model", "hash", "--index-cache", str(cache), "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert (cache / "manifest.json").is_file()
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["results"]["bm25"]["ndcg@10"] == second["results"]["bm25"]["ndcg@10"]


def test_eval_command_rejects_a_missing_dataset(tmp_path: Path, capsys) -> None:
    assert main(["eval", str(tmp_path / "nothing"), "--model", "hash"]) == 1
    assert "neither" in capsys.readouterr().err


# ---------------------------------------------------------------------- the memorandum set

_STOP = frozenset(
    {"the", "and", "of", "a", "an", "to", "in", "on", "for", "with", "by", "from", "what"}
    | {"which", "who", "how", "does", "will", "is", "are", "be"}
)


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in _STOP}


def test_memorandum_set_is_well_formed() -> None:
    items = load_qa(QA_SET)
    text = MEMORANDUM.read_text(encoding="utf-8")
    assert len(items) >= 30
    for item in items:
        assert item.source == MEMORANDUM.name
        assert text.count(item.evidence) == 1, item.evidence
        evidence = _content_words(item.evidence)
        shared = evidence & _content_words(item.question)
        assert len(shared) <= max(1, len(evidence) // 2), (item.id, shared)  # paraphrased
    tags = {tag for item in items for tag in item.tags}
    assert {f"item{n}" for n in range(1, 9)} <= tags
    assert {"p1", "p2", "p3", "p4", "close1", "close2", "hard"} <= tags


def test_memorandum_evidence_fits_in_one_chunk(fake_embedder) -> None:
    from tpd_qa.ingest import parse

    document = parse(MEMORANDUM.read_bytes(), MEMORANDUM.name)
    chunks = Chunker(count_tokens=fake_embedder.count_tokens).chunk(document)
    for item in load_qa(QA_SET):
        assert any(passage_matches(item.source, c.text, c.page, item) for c in chunks), item.id


@pytest.mark.model
def test_memorandum_quality_floor_with_the_bundled_model(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / MEMORANDUM.name).write_bytes(MEMORANDUM.read_bytes())
    index, _ = Index.build(folder, settings=IndexSettings())
    results, ranks = evaluate_qa(index, load_qa(QA_SET), ["hybrid"])
    hybrid = results["hybrid"]
    missed = [qid for qid, rank in ranks["hybrid"].items() if rank != 1]
    assert hybrid["hit@1"] >= MEMO_HIT1_FLOOR, missed
    assert hybrid["mrr@10"] >= MEMO_MRR_FLOOR, missed
    assert hybrid["hit@5"] >= 0.95, missed


@pytest.mark.skipif(_NO_REAL_DOCUMENTS, reason="the /usr/share/doc documents are absent")
def test_documents_set_evidence_is_in_the_indexed_text_once() -> None:
    """Each evidence string survives extraction (headers and footers left out, pages
    joined) and names one place."""
    from tpd_qa.ingest import parse

    items = load_qa(DOCUMENTS_SET)
    assert len(items) == 48
    texts = {p.name: " ".join(parse(p.read_bytes(), p.name).text.split()) for p in REAL_DOCUMENTS}
    assert {item.source for item in items} == set(texts)
    for item in items:
        assert texts[item.source].count(" ".join(item.evidence.split())) == 1, item.id


@pytest.mark.model
@pytest.mark.skipif(_NO_REAL_DOCUMENTS, reason="the /usr/share/doc documents are absent")
def test_documents_quality_floor_with_the_bundled_model(tmp_path: Path) -> None:
    """Measured: hybrid hit@1 0.563 (27 of 48), hit@5 0.771; the floors allow three
    questions to move."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for path in (MEMORANDUM, *REAL_DOCUMENTS):
        (folder / path.name).write_bytes(path.read_bytes())
    index, _ = Index.build(folder, settings=IndexSettings())
    results, ranks = evaluate_qa(index, load_qa(DOCUMENTS_SET), ["hybrid"])
    hybrid = results["hybrid"]
    missed = [qid for qid, rank in ranks["hybrid"].items() if rank != 1]
    assert hybrid["hit@1"] >= 0.50, missed
    assert hybrid["hit@5"] >= 0.70, missed


@pytest.mark.model
@pytest.mark.skipif(
    not (SCIFACT / "corpus.jsonl").is_file(), reason="../shared/data/scifact absent"
)
def test_scifact_smoke_subset() -> None:
    """Bounded: 40 test queries over their judged abstracts plus 600 others (~2,500 chunks)."""
    dataset = load_beir(SCIFACT, "test", limit=40)
    judged = {doc for rels in dataset.qrels.values() for doc in rels}
    others = [d for d in dataset.documents if d.source not in judged]
    random.Random(7).shuffle(others)
    documents = [d for d in dataset.documents if d.source in judged] + others[:600]
    index = Index.from_documents(documents)
    subset = type(dataset)(dataset.name, documents, dataset.queries, dataset.qrels)
    results = evaluate_beir(index, subset, ["bm25", "dense", "hybrid"], ["ndcg@10", "recall@100"])
    assert results["hybrid"]["ndcg@10"] >= 0.70
    assert (
        results["hybrid"]["ndcg@10"]
        >= max(results["bm25"]["ndcg@10"], results["dense"]["ndcg@10"]) - 0.02
    )
