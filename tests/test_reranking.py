"""The optional cross-encoder stage: reordering, the local CrossEncoder, the env var, errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from builders import build_test_index
from tpd_qa import api
from tpd_qa.cli import main
from tpd_qa.errors import ConfigError
from tpd_qa.index import SearchSettings
from tpd_qa.index.search import Searcher
from tpd_qa.index.state import embedding_text
from tpd_qa.reranking import RERANKER_ENV, CrossEncoderReranker, Reranker, load_reranker

QUESTION = "Which facility will help commercialize fusion?"


class WordReranker:
    """Deterministic fake: a passage scores the number of times it holds ``word``."""

    name = "fake:word"

    def __init__(self, word: str) -> None:
        self.word = word
        self.calls: list[tuple[str, list[str]]] = []

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        self.calls.append((question, list(texts)))
        return np.array([float(text.count(self.word)) for text in texts])


def test_fake_reranker_reorders_the_best_candidates(corpus: Path) -> None:
    index, _ = build_test_index(corpus)
    reranker = WordReranker("Artemis")
    assert isinstance(reranker, Reranker)
    plain = index.searcher
    depth = 6
    reranked = Searcher(
        index.state, SearchSettings(rerank_depth=depth), plain.query_vector, reranker
    )
    before = plain.rank(QUESTION, "hybrid", 100)
    after = reranked.rank(QUESTION, "hybrid", 100)
    assert len(before) == len(after) > depth
    head = before[:depth]
    texts = [index.state.keyword_text(row) for row, _ in head]
    assert reranker.calls == [(QUESTION, texts)]  # the best rows, with their title header
    scores = [float(t.count("Artemis")) for t in texts]
    expected = sorted(range(depth), key=lambda i: (-scores[i], i))  # stable: ties keep order
    assert [row for row, _ in after[:depth]] == [head[i][0] for i in expected]
    assert [score for _, score in after[:depth]] == [scores[i] for i in expected]
    assert [row for row, _ in after[depth:]] == [row for row, _ in before[depth:]]
    assert all(score <= min(scores) for _, score in after[depth:])  # never rising
    if "Artemis" in " ".join(texts):
        assert "Artemis" in reranked.state.chunks[after[0][0]].text
        assert before[0][0] != after[0][0]


def test_reranker_puts_its_choice_first_through_index_search(corpus: Path) -> None:
    index, _ = build_test_index(corpus)
    top_before = index.search(QUESTION, 3)
    index.search_settings = SearchSettings(rerank_depth=50)
    index.reranker = WordReranker("Artemis")
    top = index.search(QUESTION, 3)
    assert "Artemis" in top[0].text and "Artemis" not in top_before[0].text
    assert top[0].score == 1.0 and top[0].answer_start is not None
    # keyword and semantic modes are left as they are
    for mode in ("dense", "bm25"):
        index.reranker = None
        plain = index.search(QUESTION, 3, mode=mode)
        index.reranker = WordReranker("Artemis")
        assert index.search(QUESTION, 3, mode=mode) == plain
    index.reranker = None
    assert index.search(QUESTION, 3) == top_before


def test_rerank_depth_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="rerank_depth"):
        SearchSettings(rerank_depth=0)


def test_broken_scores_rank_last_and_stay_finite(corpus: Path) -> None:
    class Broken:
        name = "fake:nan"

        def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
            return np.array([np.nan] + [0.5] * (len(texts) - 1))

    index, _ = build_test_index(corpus)
    searcher = Searcher(index.state, SearchSettings(rerank_depth=4), index.searcher.query_vector)
    before = searcher.rank(QUESTION, "hybrid", 100)
    searcher.reranker = Broken()
    after = searcher.rank(QUESTION, "hybrid", 100)
    assert after[3][0] == before[0][0] and all(np.isfinite(s) for _, s in after)

    class Short:
        name = "fake:short"

        def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
            return np.zeros(1)

    searcher.reranker = Short()
    with pytest.raises(ValueError, match="scores for"):
        searcher.rank(QUESTION, "hybrid", 100)


# ---------------------------------------------------------------------- a real CrossEncoder

WORDS = (
    "the a of and which will help facility fusion jt 60sa naka tokamak artemis lunar "
    "space money deal japan magnets quantum chips commercialize"
)
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS.split(" ")]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT cross-encoder (hidden 32, 29-word vocabulary), random but seeded."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("cross-encoder")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(7)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_a_local_cross_encoder_folder_scores_pairs(tiny_cross_encoder: Path) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder)
    assert isinstance(reranker, Reranker) and reranker.name == str(tiny_cross_encoder.resolve())
    texts = ["fusion magnets at naka", "lunar space artemis", "the deal"]
    scores = reranker.score("which facility fusion", texts)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    assert np.array_equal(scores, reranker.score("which facility fusion", texts))
    assert len(set(scores.tolist())) > 1  # the pair, not a constant, decides
    assert reranker.score("q", []).shape == (0,)
    assert load_reranker(tiny_cross_encoder) is load_reranker(str(tiny_cross_encoder))


def test_env_var_reranks_retrieve_and_the_cli(
    tiny_cross_encoder: Path,
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index_dir = tmp_path / "index"
    build_test_index(corpus, index_dir)
    monkeypatch.setenv("TPD_QA_MODEL", "hash")
    monkeypatch.setenv(RERANKER_ENV, str(tiny_cross_encoder))
    loaded = api.load_index(index_dir)
    assert loaded.reranker is not None and loaded.reranker.name == str(tiny_cross_encoder)
    passages = api.retrieve(QUESTION, k=4, index_dir=index_dir)
    model = load_reranker(tiny_cross_encoder)
    texts = [embedding_text(p.title, p.section, p.text) for p in passages]
    expected = model.score(QUESTION, texts)
    assert [p.score for p in passages] == pytest.approx(expected.tolist(), abs=1e-6)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    assert main(["ask", QUESTION, "--index", str(index_dir), "-k", "4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["score"] for r in rows] == [p.score for p in passages]
    # without the variable the same call is the plain hybrid ranking again
    monkeypatch.delenv(RERANKER_ENV)
    assert api.load_index(index_dir).reranker is None


def test_bad_reranker_paths_are_refused_with_a_remedy_and_never_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_loading(folder: Path) -> None:
        raise AssertionError(f"tried to load {folder}")

    monkeypatch.setattr("tpd_qa.reranking._load_cross_encoder", no_loading)
    a_file = tmp_path / "model.bin"
    a_file.write_bytes(b"\0")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        tmp_path / "missing": "does not exist",
        Path("cross-encoder/ms-marco-MiniLM-L6-v2"): "does not exist",  # a hub id: no fetch
        a_file: "is not a folder",
        empty: "no config.json",
    }
    for path, message in cases.items():
        with pytest.raises(ConfigError, match=message) as caught:
            CrossEncoderReranker(path)
        assert caught.value.remedy == "choose_reranker"


def test_a_folder_that_is_not_a_cross_encoder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(ConfigError, match="could not be loaded as a CrossEncoder") as caught:
        CrossEncoderReranker(folder)
    assert caught.value.remedy == "choose_reranker"


def test_cli_names_the_variable_when_the_reranker_is_unusable(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    index_dir = tmp_path / "index"
    build_test_index(corpus, index_dir)
    monkeypatch.setenv("TPD_QA_MODEL", "hash")
    monkeypatch.setenv(RERANKER_ENV, str(tmp_path / "nowhere"))
    assert main(["ask", QUESTION, "--index", str(index_dir)]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("tpd-qa: error: reranker")
    assert "set TPD_QA_RERANKER to a CrossEncoder folder, or unset it" in error[0]
