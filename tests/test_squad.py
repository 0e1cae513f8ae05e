"""SQuAD-format evaluation: reading the file, the hit rule, the metrics and ``tpd-qa eval``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpd_qa.cli import main
from tpd_qa.errors import ConfigError
from tpd_qa.evaluation import evaluate_squad, load_squad, squad_metrics
from tpd_qa.evaluation.squad import MAX_PASSAGE_CHARS, SquadQuestion, first_hit, is_squad, squad_hit
from tpd_qa.index import Index

ARTICLES = [
    {
        "title": "Tokamak_fusion",
        "paragraphs": [
            {
                "context": "The JT-60SA tokamak in Naka confines plasma with superconducting "
                "magnets. It began operating in 2023.",
                "qas": [
                    {
                        "id": "t1",
                        "question": "Where is the JT-60SA tokamak?",
                        "answers": [{"text": "Naka", "answer_start": 32}],
                    },
                    {
                        "id": "t2",
                        "question": "In what year did it begin operating?",
                        "answers": [{"text": "2023", "answer_start": 0}, {"text": "2023"}],
                    },
                ],
            },
            {
                "context": "Fusion fuel cycles breed tritium from lithium blankets.",
                "qas": [
                    {
                        "id": "t3",
                        "question": "What do blankets breed tritium from?",
                        "answers": [{"text": "lithium"}],
                    },
                    {
                        "id": "t4",
                        "question": "Which reactor is made of cheese?",
                        "answers": [],
                        "is_impossible": True,
                    },
                ],
            },
        ],
    },
    {
        "title": "Lunar/rovers",
        "paragraphs": [
            {
                "context": "Rovers explore the south pole of the Moon for water ice.",
                "qas": [
                    {
                        "id": "m1",
                        "question": "What do rovers look for at the lunar south pole?",
                        "answers": [{"text": "water ice"}],
                    }
                ],
            }
        ],
    },
]


def _write_squad(path: Path) -> Path:
    path.write_text(json.dumps({"version": "1.1", "data": ARTICLES}), encoding="utf-8")
    return path


def test_load_squad_builds_one_markdown_document_per_article(tmp_path: Path) -> None:
    dataset = load_squad(_write_squad(tmp_path / "train.json"))
    assert list(dataset.documents) == ["Tokamak_fusion.md", "Lunar_rovers.md"]
    text = dataset.documents["Tokamak_fusion.md"]
    assert text.startswith("# Tokamak fusion\n\nThe JT-60SA tokamak in Naka")
    assert "2023.\n\nFusion fuel cycles" in text  # one paragraph per context
    assert [q.id for q in dataset.questions] == ["t1", "t2", "t3", "m1"]  # t4 unanswerable
    assert dataset.questions[1].answers == ("2023",)  # repeated gold answers once
    assert dataset.questions[3].source == "Lunar_rovers.md"
    assert [q.id for q in load_squad(tmp_path / "train.json", limit=2).questions] == ["t1", "t2"]
    dataset.write_corpus(tmp_path / "corpus")
    assert (
        (tmp_path / "corpus" / "Lunar_rovers.md")
        .read_text(encoding="utf-8")
        .startswith("# Lunar/rovers\n\n")
    )


def test_squad_is_told_apart_from_qa_jsonl_and_refused_when_malformed(tmp_path: Path) -> None:
    assert is_squad(_write_squad(tmp_path / "train.json"))
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "q", "source": "a", "evidence": "e"}\n' * 2, encoding="utf-8")
    assert not is_squad(qa)
    single = tmp_path / "one.jsonl"
    single.write_text('{"question": "q", "source": "a", "evidence": "e"}\n', encoding="utf-8")
    assert not is_squad(single)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": [{"paragraphs": [{"qas": []}]}]}), encoding="utf-8")
    assert is_squad(bad)
    with pytest.raises(ConfigError, match="no context"):
        load_squad(bad)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"data": [{"paragraphs": []}]}), encoding="utf-8")
    with pytest.raises(ConfigError, match="no answerable questions"):
        load_squad(empty)


def test_squad_hit_needs_the_article_a_gold_answer_and_a_readable_passage() -> None:
    question = SquadQuestion("q", "Where?", "a.md", ("Naka", "Ibaraki"))
    assert squad_hit("a.md", "The tokamak in Naka.", question)
    assert not squad_hit("b.md", "The tokamak in Naka.", question)
    assert not squad_hit("a.md", "The tokamak in naka.", question)  # exact answer text
    long = "Naka " + "x" * MAX_PASSAGE_CHARS
    assert not squad_hit("a.md", long, question)
    passages = [("b.md", "Naka"), ("a.md", "none"), ("a.md", "in Ibaraki")]
    assert first_hit(question, passages) == 3
    assert first_hit(question, passages[:2]) is None


def test_squad_metrics_match_hand_computed_values() -> None:
    questions = [
        SquadQuestion("1", "?", "a.md", ("x",)),
        SquadQuestion("2", "?", "a.md", ("y",)),
        SquadQuestion("3", "?", "b.md", ("z",)),
        SquadQuestion("4", "?", "b.md", ("w",)),
    ]
    found = {
        "1": [("a.md", "x here")],  # rank 1, span holds x
        "2": [("a.md", "no"), ("a.md", "y")],  # rank 2; its first span lacks "y"
        "3": [("b.md", "z")],  # rank 1, span misses it
        "4": [("a.md", "w")] + [("b.md", "-")] * 5 + [("b.md", "w")],  # rank 7
    }
    spans = {"1": "x here", "2": "no", "3": "other", "4": "w"}
    metrics = squad_metrics(questions, found, spans)
    assert metrics["hit@1"] == pytest.approx(2 / 4)
    assert metrics["hit@5"] == pytest.approx(3 / 4)
    assert metrics["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 + 1 / 7) / 4)
    # answer@1: right article first and its span holds an answer: only question 1
    # (question 4's first passage is from the wrong article)
    assert metrics["answer@1"] == pytest.approx(1 / 4)
    assert metrics["answer|hit@1"] == pytest.approx(1 / 2)
    assert "answer@1" not in squad_metrics(questions, found)
    # first passages are 6, 2, 1 and 1 characters long; the first five of each question
    # add 1 and the five passages of question 4 (all 1 character)
    assert metrics["chars@1"] == pytest.approx(1.5)
    assert metrics["chars@5"] == pytest.approx(1)


def test_evaluate_squad_judges_answer_spans(tmp_path: Path, fake_embedder) -> None:
    dataset = load_squad(_write_squad(tmp_path / "train.json"))
    dataset.write_corpus(tmp_path / "corpus")
    index, _ = Index.build(tmp_path / "corpus", embedder=fake_embedder)
    results, ranks = evaluate_squad(index, dataset, ["bm25", "hybrid"])
    assert results["bm25"]["hit@1"] == pytest.approx(1.0)
    assert ranks["bm25"] == {"t1": 1, "t2": 1, "t3": 1, "m1": 1}
    for row in results.values():
        assert 0 <= row["answer@1"] <= row["hit@1"] <= row["hit@5"] <= 1
        assert row["mrr@10"] >= row["hit@1"]
    # the first tokamak paragraph holds two sentences: the marked one answers the year
    passage = index.search("In what year did it begin operating?", 1, mode="bm25")[0]
    assert "2023" in passage.answer and "Naka" not in passage.answer


def test_eval_command_reads_squad_json(tmp_path: Path, capsys) -> None:
    path = _write_squad(tmp_path / "train-v1.1.json")
    assert main(["eval", str(path), "--model", "hash", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "squad" and report["queries"] == 4 and report["chunks"] >= 2
    assert set(report["results"]) == {"bm25", "dense", "hybrid"}
    bm25 = report["results"]["bm25"]
    assert set(bm25) >= {"hit@1", "hit@5", "mrr@10", "answer@1", "answer|hit@1"}
    assert bm25["hit@1"] == pytest.approx(1.0)
    assert report["reranker"] is None
    cache = tmp_path / "cache"
    argv = ["eval", str(path), "--model", "hash", "--modes", "bm25", "--index-cache", str(cache)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "squad, 4 queries" in out and "answer@1" in out and "mrr@10" in out
    assert (cache / "manifest.json").is_file()
    assert main([*argv, "--limit", "1"]) == 0
    assert "squad, 1 queries" in capsys.readouterr().out
