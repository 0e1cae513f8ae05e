"""Sentence vectors: the content-addressed store, how updates fill it, how search uses it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CountingEmbedder
from tpd_qa.embedding import HashEmbedder
from tpd_qa.errors import IndexCorruptError
from tpd_qa.index import Index, IndexSettings
from tpd_qa.records import Document
from tpd_qa.sentences import SentenceVectors, chunk_sentences, sentences_of
from tpd_qa.text import answer_spans, text_key


def _embed(texts: list[str]) -> np.ndarray:
    return HashEmbedder(16).embed_batch(texts)


def test_answer_spans_leave_out_heading_lines_unless_nothing_else() -> None:
    text = "# Fusion\n\nJT-60SA is in Naka. It is large."
    assert [text[s:e] for s, e in answer_spans(text)] == ["JT-60SA is in Naka.", "It is large."]
    assert sentences_of("# Only a heading") == ["# Only a heading"]
    assert sentences_of("") == [""]


def _update(
    store: SentenceVectors,
    rows: list[list[str]],
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> tuple[SentenceVectors, int]:
    """``store`` updated for chunk rows holding these sentence texts."""
    texts = {text_key(text): text for row in rows for text in row}
    keys = [[text_key(text) for text in row] for row in rows]
    return store.updated(keys, texts, embed or _embed)


def test_update_embeds_each_new_sentence_once_and_drops_unused_ones() -> None:
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return _embed(texts)

    store, embedded = _update(SentenceVectors.empty(16), [["a b.", "c d."], ["a b."]], embed)
    assert embedded == 2 and calls == [["a b.", "c d."]] and len(store) == 2
    assert store.chunk_rows == 2 and list(store.of_row(1)) == list(store.of_row(0)[:1])
    again, embedded = _update(store, [["c d."], ["e f."]], embed)
    assert embedded == 1 and calls[-1] == ["e f."]
    assert len(again) == 2  # "a b." is no longer wanted
    assert again.rows_of(["a b."]).size == 0
    kept = again.rows_of(["c d."])
    np.testing.assert_array_equal(again.vectors[kept], store.vectors[store.rows_of(["c d."])])
    _, embedded = again.updated([again.keys_of_row(1), again.keys_of_row(0)], {}, embed)
    assert embedded == 0 and len(calls) == 2  # nothing new: the embedder is not called


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.text(min_size=1, max_size=12), max_size=4), max_size=8),
    st.lists(st.lists(st.text(min_size=1, max_size=12), max_size=4), max_size=8),
)
def test_a_store_maps_each_row_to_exactly_its_sentences(
    first: list[list[str]], second: list[list[str]]
) -> None:
    store, embedded = _update(SentenceVectors.empty(16), first)
    seen = {text for row in first for text in row}
    assert embedded == len(seen) == len(store)
    store, embedded = _update(store, second)
    wanted = {text for row in second for text in row}
    assert embedded == len(wanted - seen)
    assert {key.tobytes() for key in store.keys} == {text_key(s) for s in wanted}
    assert store.chunk_rows == len(second)
    for number, row in enumerate(second):  # each row's sentences, in order, own vectors
        assert store.keys_of_row(number) == [text_key(text) for text in row]
        for sentence_row, text in zip(store.of_row(number), row, strict=True):
            expected = _embed([text])[0].astype(np.float16)
            np.testing.assert_array_equal(store.vectors[sentence_row], expected)
    if second:  # rows taken again (replicas) keep their sentences
        taken = store.taken(np.array([len(second) - 1] * 2))
        assert taken.keys_of_row(1) == store.keys_of_row(len(second) - 1)


def test_best_cosine_is_the_closest_sentence() -> None:
    store, _ = _update(SentenceVectors.empty(16), [["fusion magnets.", "lunar rovers."]])
    vector = _embed(["lunar rovers."])[0]
    assert store.best_cosine(vector, store.of_row(0)) == pytest.approx(1.0, abs=1e-3)
    assert store.best_cosine(vector, store.of_row(0)[:0]) is None


def test_save_and_load_mirror_each_other(tmp_path: Path) -> None:
    store, _ = _update(SentenceVectors.empty(16), [["one.", "two."], [], ["two."]])
    store.save(tmp_path)
    loaded = SentenceVectors.load(tmp_path)
    assert loaded is not None
    for name in ("keys", "vectors", "offsets", "index"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(store, name))
    assert SentenceVectors.load(tmp_path / "missing") is None


def test_a_mapping_that_points_outside_the_store_is_refused() -> None:
    store, _ = _update(SentenceVectors.empty(16), [["one."]])
    with pytest.raises(ValueError, match="does not hold"):
        SentenceVectors(store.keys, store.vectors, np.array([0, 1]), np.array([5]))
    with pytest.raises(ValueError, match="offsets"):
        SentenceVectors(store.keys, store.vectors, np.array([0, 2]), np.array([0]))


def _answering_sentences(index: Index) -> set[str]:
    return {s for chunk in index.state.chunks for s in sentences_of(chunk.text)}


def test_an_index_keeps_a_vector_of_every_answering_sentence(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = CountingEmbedder()
    index, report = Index.build(corpus, embedder=embedder)
    store = index.state.sentences
    assert store is not None
    wanted = _answering_sentences(index)
    assert {key.tobytes() for key in store.keys} == {text_key(s) for s in wanted}
    assert report.embedded_sentences == len(wanted)
    assert len(wanted) > len(index.state.chunks)

    # saved and loaded with the index
    index.save(tmp_path / "index")
    loaded = Index.load(tmp_path / "index", embedder=HashEmbedder(64))
    assert loaded.state.sentences is not None
    np.testing.assert_array_equal(loaded.state.sentences.keys, store.keys)

    # nothing changed: nothing embedded, the same store
    embedder.reset()
    report = index.update(corpus)
    assert embedder.embedded == 0 and report.embedded_sentences == 0
    assert index.state.sentences is store

    # one new sentence in one file: that sentence alone is embedded
    notes = corpus / "notes.md"
    notes.write_text(
        notes.read_text(encoding="utf-8") + "\nA brand new closing remark appears here.\n",
        encoding="utf-8",
    )
    split: list[str] = []  # passages split into sentences: only the changed file's

    def counting(text: str) -> tuple[list[bytes], dict[bytes, str]]:
        split.append(text)
        return chunk_sentences(text)

    monkeypatch.setattr("tpd_qa.index.sync.chunk_sentences", counting)
    report = index.update(corpus)
    notes_id = index.document("notes.md").sha256
    assert split == [chunk.text for chunk in index.chunks() if chunk.doc_id == notes_id]
    assert report.embedded_sentences == 1
    assert "A brand new closing remark appears here." in [t for b in embedder.batches for t in b]
    assert {k.tobytes() for k in index.state.sentences.keys} == {
        text_key(s) for s in _answering_sentences(index)
    }


def test_without_sentence_vectors_nothing_extra_is_embedded_and_search_still_works(
    corpus: Path,
) -> None:
    embedder = CountingEmbedder()
    index, report = Index.build(corpus, embedder=embedder, settings=IndexSettings(sentences=False))
    assert index.state.sentences is None and report.embedded_sentences == 0
    assert embedder.embedded == len(index.state.chunks)
    assert index.search("Where is the JT-60SA tokamak?", 3)


def test_an_index_saved_without_sentence_vectors_gains_them_on_update(
    corpus: Path, tmp_path: Path
) -> None:
    index, _ = Index.build(corpus, embedder=HashEmbedder(64))
    index.save(tmp_path / "index")
    generation = next((tmp_path / "index").glob("gen-*"))
    for name in SentenceVectors.files():  # as an index from before sentence vectors
        (generation / name).unlink()
    old = Index.load(tmp_path / "index", embedder=HashEmbedder(64), verify=False)
    assert old.state.sentences is None
    assert old.search("Where is the JT-60SA tokamak?", 3)  # ranks without the feature
    report = old.update(corpus)
    assert old.state.sentences is not None
    assert report.embedded_sentences == len(_answering_sentences(old))
    assert report.embedded_chunks == 0  # passages keep their vectors


class _SentenceMinded:
    """Passage vectors that mislead, sentence vectors that do not: 'target' sentences
    point along the question, whole passages (with a header line) away from it."""

    name = "sentence-minded"
    dimension = 4
    max_tokens = 254

    def embed_batch(self, texts):  # type: ignore[no-untyped-def]
        out = np.zeros((len(texts), 4), dtype=np.float32)
        for row, text in enumerate(texts):
            if text.startswith("QUESTION"):
                out[row] = (1, 0, 0, 0)
            elif "\n" in text:  # a passage's embedding text: header line + body
                out[row] = (0.8, 0.6, 0, 0) if "decoy" in text else (0.6, 0, 0.8, 0)
            elif "target" in text:
                out[row] = (1, 0, 0, 0)
            else:
                out[row] = (0, 0, 0, 1)
        return out

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def test_the_passage_with_the_best_sentence_ranks_first() -> None:
    documents = [
        Document(name, name, text, "text", name[0] * 64)
        for name, text in (
            ("a.txt", "The target fact is stated here. Other words follow about gardens."),
            ("b.txt", "A decoy passage talks around it. Still nothing of note here."),
        )
    ]
    embedder = _SentenceMinded()
    index = Index.from_documents(documents, embedder=embedder)
    assert index.state.sentences is not None
    first = index.search("QUESTION zebra?", 2)[0]
    assert first.source == "a.txt"
    # the same index without its sentence vectors puts the decoy first
    index._use(replace(index.state, sentences=None))
    assert index.search("QUESTION zebra?", 2)[0].source == "b.txt"


def test_sentence_vectors_are_files_of_the_generation(corpus: Path, tmp_path: Path) -> None:
    index, _ = Index.build(corpus, embedder=HashEmbedder(64))
    index.save(tmp_path / "index")
    generation = next((tmp_path / "index").glob("gen-*"))
    for name in SentenceVectors.files():
        assert (generation / name).is_file()
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "index", copy)
    (next(copy.glob("gen-*")) / SentenceVectors.files()[1]).write_bytes(b"damaged")
    with pytest.raises(IndexCorruptError):
        Index.load(copy, embedder=HashEmbedder(64))


def test_sentence_embedding_reports_its_own_progress_stage(corpus: Path) -> None:
    events: list[tuple[str, int, int]] = []
    _index, report = Index.build(
        corpus, embedder=HashEmbedder(64), on_progress=lambda *event: events.append(event)
    )
    stages = [stage for stage, _done, _total in events]
    assert stages.index("embedding") < stages.index("sentences")
    last = [event for event in events if event[0] == "sentences"][-1]
    assert last == ("sentences", report.embedded_sentences, report.embedded_sentences)
