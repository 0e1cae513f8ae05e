"""Japanese documents through the public API: decoding, keyword search, chunking, citations.

The corpus is a copy of ``corpus/ja/`` (a Markdown summary of the memorandum in UTF-8 and
notes in Shift_JIS) beside the English memorandum, indexed with the deterministic hash
embedder. The hash embedder estimates tokens (``tpd_qa.text.estimate_tokens``: one per
CJK character, 1.3 per whitespace-separated word); the chunking tests also index with
``CharTokenEmbedder``: hash vectors, but one token per non-space character, about what
the bundled model's tokenizer makes of Japanese (checked by the ``model`` test).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ROOT, SEED
from tpd_qa import Chunk, Index, Passage
from tpd_qa.embedding import HashEmbedder
from tpd_qa.evaluation import evaluate_qa, load_qa

JA = ROOT / "corpus" / "ja"
SUMMARY = "ja/日米技術繁栄ディール概要.md"
NOTES = "ja/メモ_sjis.txt"
QA = ROOT / "data" / "japanese_qa.jsonl"
CROSSLINGUAL = ROOT / "data" / "japanese_crosslingual_qa.jsonl"
MAX_TOKENS = 220  # ChunkerSettings().max_tokens, the default every index uses

_SENTENCE_END = re.compile(r"[。！？][」』）)\]\"'”’]*$")
_CLOSERS = "」』）)]”’"


class CharTokenEmbedder(HashEmbedder):
    """Hash vectors, but every non-space character counts as one token (like CJK in BERT)."""

    def count_tokens(self, text: str) -> int:
        return sum(not c.isspace() for c in text)


def _corpus(folder: Path) -> Path:
    folder.mkdir()
    shutil.copytree(JA, folder / "ja")
    shutil.copy(SEED, folder / SEED.name)
    return folder


@pytest.fixture(scope="module")
def hashed(tmp_path_factory: pytest.TempPathFactory) -> Index:
    corpus = _corpus(tmp_path_factory.mktemp("hashed") / "corpus")
    index, report = Index.build(corpus, embedder=HashEmbedder(64))
    assert report.documents == 3 and not [o for o in report.outcomes if o.status == "skipped"]
    return index


@pytest.fixture(scope="module")
def char_counted(tmp_path_factory: pytest.TempPathFactory) -> Index:
    corpus = _corpus(tmp_path_factory.mktemp("chars") / "corpus")
    index, _ = Index.build(corpus, embedder=CharTokenEmbedder(64))
    return index


def _chunks(index: Index, source: str) -> list[Chunk]:
    """Every passage of ``source`` as indexed, in text order."""
    sha = index.document(source).sha256
    return sorted((c for c in index.chunks() if c.doc_id == sha), key=lambda c: c.start)


def _passages(index: Index, source: str) -> list[Passage]:
    """Passages of ``source`` as search returns them (overlapping lower ranks left out)."""
    found = index.search("覚書の協力", 100, sources=[source])
    found += index.search("the", 100, mode="dense", sources=[source])
    return list({(p.start, p.end): p for p in found}.values())


def _ends_sentence_or_block(text: str, end: int) -> bool:
    at_block_end = end == len(text.rstrip()) or text[end : end + 1] == "\n"
    return at_block_end or bool(_SENTENCE_END.search(text, 0, end))


def _check_japanese_chunks(index: Index, source: str, count: Callable[[str], int]) -> None:
    document = index.document(source)
    chunks = _chunks(index, source)
    assert len(chunks) >= 2
    for chunk in chunks:
        assert document.text[chunk.start : chunk.end] == chunk.text
        assert count(chunk.text) <= MAX_TOKENS, chunk.text[:20]
        assert _ends_sentence_or_block(document.text, chunk.end), chunk.text[-20:]


# ---------------------------------------------------------------------------------------
# decoding


def test_shift_jis_notes_are_decoded(hashed: Index) -> None:
    raw = (JA / Path(NOTES).name).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the file really is Shift_JIS, not UTF-8
    document = hashed.document(NOTES)
    assert document.text == raw.decode("shift_jis")
    assert document.title == "覚書を読むためのメモ（用語集と確認事項）"
    assert "JT-60SA：茨城県那珂市にある超伝導トカマク型の核融合実験装置。" in document.text


def test_utf8_markdown_summary_keeps_its_headings(hashed: Index) -> None:
    document = hashed.document(SUMMARY)
    assert document.text == (JA / Path(SUMMARY).name).read_text(encoding="utf-8")
    assert document.title == "日米「技術繁栄ディール」覚書の概要"
    titles = [heading.title for heading in document.headings]
    assert "核融合とJT-60SA" in titles and "資金と法的拘束力" in titles


def _index_cp932(folder: Path, text: str) -> tuple[Index, list[str]]:
    corpus = folder / "corpus"
    corpus.mkdir()
    (corpus / "windows.txt").write_bytes(text.encode("cp932"))
    index, report = Index.build(corpus, embedder=HashEmbedder(64))
    return index, [f"{o.source}: {o.reason}" for o in report.outcomes if o.status == "skipped"]


def test_windows_cp932_text_with_circled_digits_is_indexed(tmp_path: Path) -> None:
    text = "確認事項のメモ\n\n①覚書は財政的な約束を伴わない。②協力は国内法に従う。③以上。\n" * 3
    index, skipped = _index_cp932(tmp_path, text)
    assert skipped == []
    assert index.document("windows.txt").text == text


def test_windows_cp932_text_keeps_its_fullwidth_tilde(tmp_path: Path) -> None:
    text = "確認事項のメモ\n\n期間は二〇二五年～二〇三〇年を想定する。協力は国内法に従う。\n" * 3
    index, skipped = _index_cp932(tmp_path, text)
    assert skipped == []
    assert index.document("windows.txt").text == text


# ---------------------------------------------------------------------------------------
# keyword search


def test_japanese_keyword_question_finds_the_japanese_passage(hashed: Index) -> None:
    best = hashed.search("核融合の実用化に向けて使われる日本の装置は何ですか？", 1, mode="bm25")
    assert best and best[0].source == SUMMARY
    assert "JT-60SAを活用して商用化を後押し" in best[0].text
    assert best[0].section is not None and "核融合とJT-60SA" in best[0].section

    notes = hashed.search("オープンRANはどういう考え方ですか？", 1, mode="bm25")
    assert notes and notes[0].source == NOTES
    assert "異なるメーカーの機器を組み合わせられる" in notes[0].text


def test_japanese_question_set_with_keywords(hashed: Index) -> None:
    """Measured 0.69 hit@1 / 0.92 hit@5 with the hash index; the floor leaves a margin."""
    results, _ = evaluate_qa(hashed, load_qa(QA), ("bm25",), ("hit@1", "hit@5"))
    assert results["bm25"]["hit@1"] >= 0.6
    assert results["bm25"]["hit@5"] >= 0.85


def test_hybrid_is_not_worse_than_keywords_for_japanese_questions(hashed: Index) -> None:
    metrics = ("hit@1", "hit@5", "mrr@10")
    results, _ = evaluate_qa(hashed, load_qa(QA), ("bm25", "hybrid"), metrics)
    for metric in metrics:
        assert results["hybrid"][metric] >= results["bm25"][metric], metric


def test_answer_sentence_of_a_japanese_passage_holds_the_answer(hashed: Index) -> None:
    judged = right = 0
    for item in load_qa(QA):
        for passage in hashed.search(item.question, 10, mode="bm25"):
            if passage.source == item.source and item.evidence in passage.text:
                if passage.answer != passage.text:  # the passage has several sentences
                    judged += 1
                    right += item.evidence in passage.answer
                break
    assert judged >= 25
    assert right >= 0.7 * judged, f"{right} of {judged}"


@pytest.mark.parametrize("path", [QA, CROSSLINGUAL], ids=["japanese", "crosslingual"])
def test_question_sets_point_at_one_passage_of_one_document(hashed: Index, path: Path) -> None:
    items = load_qa(path)
    assert len(items) >= (25 if path == QA else 10)
    texts = {info.source: hashed.document(info.source).text for info in hashed.documents()}
    for item in items:
        holders = [source for source, text in texts.items() if item.evidence in text]
        assert holders == [item.source], item.id
        assert any(item.evidence in c.text for c in _chunks(hashed, item.source)), item.id
    if path == CROSSLINGUAL:  # English questions: their answers are only in Japanese
        assert all(not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", i.question) for i in items)


# ---------------------------------------------------------------------------------------
# chunking and citations


@pytest.mark.parametrize("source", [SUMMARY, NOTES])
def test_citation_spans_are_exact(hashed: Index, char_counted: Index, source: str) -> None:
    for index in (hashed, char_counted):
        document = index.document(source)
        passages = _passages(index, source)
        assert len(passages) >= 1
        for passage in passages:
            assert passage.source == source
            assert document.text[passage.start : passage.end] == passage.text
            assert f"chars {passage.start}–{passage.end}" in passage.citation
        for chunk in _chunks(index, source):
            assert document.text[chunk.start : chunk.end] == chunk.text


@pytest.mark.parametrize("source", [SUMMARY, NOTES])
def test_japanese_passages_end_at_sentence_or_block_ends(char_counted: Index, source: str) -> None:
    _check_japanese_chunks(char_counted, source, CharTokenEmbedder(64).count_tokens)


def test_quoted_sentences_stay_whole(tmp_path: Path) -> None:
    # 10 repetitions: chunker algorithm 5 cuts into even pieces, and one cut lands at 。」
    sentence = "大臣は「覚書に法的な拘束力はない。」と述べた。次に予算の話に移った！本当か？ええ。"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "quotes.txt").write_text(sentence * 10 + "\n", encoding="utf-8")
    index, _ = Index.build(corpus, embedder=CharTokenEmbedder(64))
    chunks = _chunks(index, "quotes.txt")
    assert len(chunks) >= 2
    text = index.document("quotes.txt").text
    for chunk in chunks:
        assert chunk.text[0] not in _CLOSERS + "と", chunk.text[:10]
        assert text[chunk.end : chunk.end + 1] not in _CLOSERS + "と", chunk.text[-10:]


def test_long_japanese_paragraph_is_cut_with_the_hash_model(tmp_path: Path) -> None:
    paragraph = "".join(
        f"第{n}の論点として、覚書は日米の研究者が協力して技術の信頼性を高めることを求めている。"
        for n in range(1, 61)
    )
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "long.txt").write_text(paragraph + "\n", encoding="utf-8")
    index, _ = Index.build(corpus, embedder=HashEmbedder(64))
    assert (
        max(len(c.text) for c in _chunks(index, "long.txt")) <= 1200
    )  # README: roughly 300-1,200 characters


@pytest.mark.model
def test_real_tokenizer_chunks_japanese_within_its_window(tmp_path: Path) -> None:
    """The bundled model's tokenizer (not its vectors) drives chunking of the Japanese summary."""
    from tpd_qa.embedding import SentenceTransformerEmbedder

    model = SentenceTransformerEmbedder()

    class RealCounter(HashEmbedder):
        def count_tokens(self, text: str) -> int:
            return model.count_tokens(text)

    char_counter = CharTokenEmbedder(64)
    sample = (JA / Path(SUMMARY).name).read_text(encoding="utf-8")[:400]
    ratio = model.count_tokens(sample) / char_counter.count_tokens(sample)
    assert 0.7 <= ratio <= 1.1  # about one token per character: CharTokenEmbedder is realistic

    corpus = _corpus(tmp_path / "corpus")
    index, _ = Index.build(corpus, embedder=RealCounter(64))
    _check_japanese_chunks(index, SUMMARY, model.count_tokens)
    _check_japanese_chunks(index, NOTES, model.count_tokens)
