"""Tests of tpd_qa.index building: manifest, round trips and incremental updates.

Everything runs on the fake (hashing) embedder in tmp dirs; a wrapping embedder counts
what is embedded so that "only changed files are re-embedded" is checked, not assumed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import tpd_qa
from builders import build_test_index, hash_settings
from conftest import CountingEmbedder
from tpd_qa import api
from tpd_qa.chunking import ChunkerSettings
from tpd_qa.embedding import HashEmbedder
from tpd_qa.errors import IngestError
from tpd_qa.index import FORMAT_VERSION, Index, read_manifest
from tpd_qa.records import BuildReport

SEED_NAME = "us-japan-technology-prosperity-deal.txt"
QUESTIONS = [
    "Which facility will help commercialize fusion?",
    "Does the deal commit any money?",
    "lithography tools and rare gases",
    "Artemis lunar surface",
]


def statuses(report: BuildReport) -> dict[str, str]:
    return {o.source: o.status for o in report.outcomes}


def outcome(report: BuildReport, source: str):  # type: ignore[no-untyped-def]
    return next(o for o in report.outcomes if o.source == source)


def all_results(index: Index, k: int = 5) -> list[list[dict]]:
    return [
        [p.to_dict() for p in index.search(q, k, mode=mode)]
        for q in QUESTIONS
        for mode in ("hybrid", "dense", "bm25")
    ]


@pytest.fixture
def built(
    corpus: Path, tmp_path: Path, counting_embedder: CountingEmbedder
) -> tuple[Index, Path, CountingEmbedder]:
    """The corpus indexed and saved to tmp_path/index; the embedder's counter reset.

    Without sentence vectors, so the counter counts passages alone (sentence vectors
    are counted in test_sentences.py).
    """
    directory = tmp_path / "index"
    index, _ = build_test_index(corpus, directory, embedder=counting_embedder, sentences=False)
    counting_embedder.reset()
    return index, directory, counting_embedder


def reload(directory: Path, embedder: CountingEmbedder) -> Index:
    return Index.load(directory, embedder=embedder)


# ---------------------------------------------------------------------------------------
# building and persistence


def test_build_over_corpus(corpus: Path, counting_embedder: CountingEmbedder) -> None:
    index, report = build_test_index(corpus, embedder=counting_embedder)
    assert report.embedded_sentences > 0
    assert statuses(report) == {
        "notes.md": "added",
        "sub/semis.txt": "added",
        SEED_NAME: "added",
    }
    assert report.full
    assert [d.source for d in index.documents()] == ["notes.md", "sub/semis.txt", SEED_NAME]
    assert report.documents == 3
    assert report.chunks == index.chunk_count == sum(d.chunks for d in index.documents())
    assert report.embedded_chunks == index.chunk_count
    assert counting_embedder.embedded == index.chunk_count + report.embedded_sentences
    assert sum(o.chunks for o in report.outcomes) == index.chunk_count
    # every chunk's span is exact in its document
    for info in index.documents():
        document = index.document(info.source)
        rows = [c for c in index.chunks() if c.doc_id == document.sha256]
        assert len(rows) == info.chunks
        assert all(document.text[c.start : c.end] == c.text for c in rows)


def test_build_missing_corpus(tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    with pytest.raises(IngestError):
        build_test_index(tmp_path / "nope", embedder=fake_embedder)


def test_empty_corpus_gives_empty_index(tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    (tmp_path / "c").mkdir()
    index, report = build_test_index(tmp_path / "c", embedder=fake_embedder)
    assert index.chunk_count == 0 and report.documents == 0
    assert index.search("anything at all", 3) == []
    index.save(tmp_path / "i")
    assert Index.load(tmp_path / "i").search("anything", 3) == []


def test_save_load_round_trip(built: tuple[Index, Path, CountingEmbedder]) -> None:
    index, directory, _embedder = built
    loaded = Index.load(directory)  # model taken from the manifest (hash:64)
    assert loaded.model_name == "hash:64"
    assert loaded.documents() == index.documents()
    assert loaded.chunks() == index.chunks()
    assert all_results(loaded) == all_results(index)
    assert all_results(loaded, k=50) == all_results(index, k=50)
    # saving the loaded index again and loading that gives the same answers too
    loaded.save(directory)
    assert all_results(Index.load(directory)) == all_results(index)


def test_manifest_contents(built: tuple[Index, Path, CountingEmbedder], corpus: Path) -> None:
    index, directory, _ = built
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == read_manifest(directory)
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["tpd_qa_version"] == tpd_qa.__version__
    assert manifest["model"] == {"name": "hash:64", "dimension": 64}
    assert manifest["chunker"] == hash_settings().chunker.to_dict()
    assert manifest["counts"] == {"documents": 3, "chunks": index.chunk_count}
    by_source = {d["source"]: d for d in manifest["documents"]}
    assert set(by_source) == {"notes.md", "sub/semis.txt", SEED_NAME}
    for source, record in by_source.items():
        data = (corpus / source).read_bytes()
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["chunks"] == next(d.chunks for d in index.documents() if d.source == source)
    generation = directory / manifest["generation"]
    assert generation.is_dir()
    vectors = np.load(generation / "vectors.npy")
    assert vectors.shape == (index.chunk_count, 64)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    lines = (generation / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == index.chunk_count
    # every generation file is listed with its checksum
    for name, expected in manifest["files"].items():
        data = (generation / name).read_bytes()
        assert expected == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert "vectors.npy" in manifest["files"]
    # no pickles anywhere
    for path in generation.rglob("*"):
        assert path.suffix not in {".pkl", ".pickle"}


# ---------------------------------------------------------------------------------------
# incremental updates


def test_second_update_embeds_nothing(
    built: tuple[Index, Path, CountingEmbedder], corpus: Path
) -> None:
    _, directory, embedder = built
    index = reload(directory, embedder)
    report = index.update(corpus)
    assert embedder.embedded == 0
    assert report.embedded_chunks == 0
    assert not report.full
    assert set(statuses(report).values()) == {"unchanged"}
    assert report.counts()["unchanged"] == 3


def test_update_without_changes_keeps_the_search_structures(
    built: tuple[Index, Path, CountingEmbedder], corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, directory, embedder = built
    index = reload(directory, embedder)
    before = all_results(index)
    sparse, dense = index.state.sparse, index.state.dense

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("search structures rebuilt although nothing changed")

    monkeypatch.setattr("tpd_qa.sparse.SparseIndex.build", refuse)
    monkeypatch.setattr("tpd_qa.dense.DenseIndex.build", refuse)
    index.update(corpus)
    assert index.state.sparse is sparse and index.state.dense is dense
    # a rename that keeps the order of documents keeps them too, under the new name
    (corpus / "notes.md").rename(corpus / "notes2.md")
    report = index.update(corpus)
    assert statuses(report)["notes2.md"] == "renamed"
    assert index.state.sparse is sparse
    renamed = [
        [
            {**p, "source": p["source"].replace("notes2.md", "notes.md"), "citation": ""}
            for p in query
        ]
        for query in all_results(index)
    ]
    assert renamed == [[{**p, "citation": ""} for p in query] for query in before]
    assert index.search("JT-60SA tokamak", 1, mode="bm25")[0].source == "notes2.md"


def test_changed_file_reembeds_only_its_chunks(
    built: tuple[Index, Path, CountingEmbedder], corpus: Path
) -> None:
    before, directory, embedder = built
    (corpus / "notes.md").write_text(
        "# Fusion notes\n\nThe stellarator Wendelstein cooperates with Naka researchers.\n",
        encoding="utf-8",
    )
    index = reload(directory, embedder)
    report = index.update(corpus)
    changed = outcome(report, "notes.md")
    assert changed.status == "changed"
    assert statuses(report)[SEED_NAME] == "unchanged"
    assert statuses(report)["sub/semis.txt"] == "unchanged"
    assert embedder.embedded == changed.chunks == report.embedded_chunks > 0
    # only notes.md's chunks were embedded (each embedding text starts with its title)
    assert all(t.startswith("Fusion notes") for b in embedder.batches for t in b)
    hits = index.search("Wendelstein stellarator", 3, mode="bm25")
    assert hits and hits[0].source == "notes.md"
    for passage in index.search("tokamak Naka superconducting", 5, sources=["notes.md"]):
        assert "tokamak" not in passage.text
    # the other documents' passages are untouched
    seed_before = [c for c in before.chunks() if c.doc_id == before.document(SEED_NAME).sha256]
    seed_after = [c for c in index.chunks() if c.doc_id == index.document(SEED_NAME).sha256]
    assert seed_before == seed_after


def test_edited_document_reembeds_only_its_changed_passages(
    tmp_path: Path, counting_embedder: CountingEmbedder
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    paragraphs = [
        f"Paragraph {n} covers {topic} cooperation between the two partners in depth."
        for n, topic in enumerate(["quantum", "fusion", "space", "telecom"])
    ]
    chunker = ChunkerSettings(target_tokens=20)
    (corpus / "plan.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    index, _ = build_test_index(
        corpus, embedder=counting_embedder, chunker=chunker, sentences=False
    )
    assert index.chunk_count == 4
    paragraphs[2] = "Paragraph 2 now covers lunar rovers and orbital debris tracking instead."
    (corpus / "plan.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    counting_embedder.reset()
    report = index.update(corpus)
    assert outcome(report, "plan.txt").status == "changed"
    assert report.embedded_chunks == counting_embedder.embedded == 1
    assert [t.split("\n", 1)[1] for b in counting_embedder.batches for t in b] == [paragraphs[2]]
    # reused vectors are exactly the ones a fresh build computes
    fresh, _ = build_test_index(corpus, embedder=HashEmbedder(64), chunker=chunker, sentences=False)
    assert np.array_equal(index.state.vectors, fresh.state.vectors)
    assert all_results(index) == all_results(fresh)


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written a moment ago count as settled (the racy-timestamp guard is off)."""
    monkeypatch.setattr("tpd_qa.index.sync._RACY_NS", 0)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the corpus files the index reads."""
    import tpd_qa.index.executor as executor_module  # parses
    import tpd_qa.index.sync as index_module  # hashes

    seen: list[str] = []
    real = index_module.read_file

    def spy(path: Path, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(Path(path).name)
        return real(path, **kwargs)

    monkeypatch.setattr(index_module, "read_file", spy)
    monkeypatch.setattr(executor_module, "read_file", spy)
    return seen


def test_unchanged_files_are_not_read_again(
    corpus: Path,
    tmp_path: Path,
    counting_embedder: CountingEmbedder,
    settled: None,
    reads: list[str],
) -> None:
    index, _ = build_test_index(corpus, embedder=counting_embedder)
    index.save(tmp_path / "index")
    assert sorted(reads) == sorted(["notes.md", "semis.txt", SEED_NAME] * 2)  # hash, parse
    reads.clear()
    # the stat records survive save and load
    index = reload(tmp_path / "index", counting_embedder)
    report = index.update(corpus)
    assert reads == []
    assert set(statuses(report).values()) == {"unchanged"}
    # same size, mtime put back: the change time still gives the edit away
    notes = corpus / "notes.md"
    old = notes.stat()
    notes.write_text(notes.read_text(encoding="utf-8").replace("Naka", "Mito"), encoding="utf-8")
    os.utime(notes, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert notes.stat().st_size == old.st_size
    report = index.update(corpus)
    assert statuses(report)["notes.md"] == "changed"
    assert sorted(reads) == ["notes.md", "notes.md"]
    assert index.search("Mito tokamak", 1, mode="bm25")[0].source == "notes.md"
    # --full reads everything again
    reads.clear()
    index.update(corpus, full=True)
    assert sorted(set(reads)) == sorted(["notes.md", "semis.txt", SEED_NAME])


def test_api_saves_stat_records_once_files_settle(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reads: list[str]
) -> None:
    """A file too fresh to trust its stat is recorded later, even if nothing else changed."""
    directory = tmp_path / "index"
    api.build_index(corpus, directory, model="hash")  # every file fresh: no stat records
    monkeypatch.setattr("tpd_qa.index.sync._RACY_NS", 0)  # now they have settled
    reads.clear()
    api.build_index(corpus, directory, model="hash")
    assert sorted(reads) == sorted(["notes.md", "semis.txt", SEED_NAME])
    reads.clear()
    report = api.build_index(corpus, directory, model="hash")
    assert reads == [] and report.embedded_chunks == 0


def test_freshly_written_files_are_hashed_again(
    corpus: Path, counting_embedder: CountingEmbedder, reads: list[str]
) -> None:
    """Within the racy window a write could keep the same stat: such files are re-read."""
    index, _ = build_test_index(corpus, embedder=counting_embedder)
    reads.clear()
    report = index.update(corpus)
    assert sorted(reads) == sorted(["notes.md", "semis.txt", SEED_NAME])
    assert set(statuses(report).values()) == {"unchanged"}


def test_added_file_embeds_only_its_chunks(
    built: tuple[Index, Path, CountingEmbedder], corpus: Path
) -> None:
    _, directory, embedder = built
    (corpus / "sub" / "quantum.txt").write_text(
        "Quantum networks link Tsukuba and Chicago laboratories.\n", encoding="utf-8"
    )
    index = reload(directory, embedder)
    report = index.update(corpus)
    added = outcome(report, "sub/quantum.txt")
    assert added.status == "added"
    assert report.counts()["added"] == 1 and report.counts()["unchanged"] == 3
    assert embedder.embedded == added.chunks == report.embedded_chunks
    assert all("Tsukuba" in text for batch in embedder.batches for text in batch)
    assert index.search("Tsukuba Chicago", 1, mode="bm25")[0].source == "sub/quantum.txt"


def test_removed_file_drops_its_passages(
    built: tuple[Index, Path, CountingEmbedder], corpus: Path
) -> None:
    _, directory, embedder = built
    (corpus / "sub" / "semis.txt").unlink()
    index = reload(directory, embedder)
    report = index.update(corpus)
    assert statuses(report)["sub/semis.txt"] == "removed"
    assert report.counts()["removed"] == 1
    assert embedder.embedded == 0
    assert "sub/semis.txt" not in [d.source for d in index.documents()]
    for mode in ("hybrid", "dense", "bm25"):
        passages = index.search("lithography tools rare gases semiconductor", 20, mode=mode)
        assert all(p.source != "sub/semis.txt" for p in passages)
        assert all("lithography" not in p.text for p in passages)
    assert index.search("lithography", 5, sources=["sub/semis.txt"]) == []
    # and it stays removed after a save/load
    index.save(directory)
    assert "sub/semis.txt" not in [d.source for d in Index.load(directory).documents()]


def test_renamed_file_is_not_reembedded(
    built: tuple[Index, Path, CountingEmbedder], corpus: Path
) -> None:
    before, directory, embedder = built
    shutil.move(corpus / "sub" / "semis.txt", corpus / "chips.txt")
    index = reload(directory, embedder)
    report = index.update(corpus)
    renamed = outcome(report, "chips.txt")
    assert renamed.status == "renamed"
    assert "sub/semis.txt" in renamed.reason
    # the old name is covered by "renamed"; it is not also reported as removed
    assert report.counts()["removed"] == 0
    assert "sub/semis.txt" not in statuses(report)
    assert embedder.embedded == 0 and report.embedded_chunks == 0
    hit = index.search("lithography rare gases", 1, mode="bm25")[0]
    assert hit.source == "chips.txt"
    assert index.chunk_count == before.chunk_count
    assert index.document("chips.txt").sha256 == before.document("sub/semis.txt").sha256


def test_identical_copy_is_indexed_once(
    built: tuple[Index, Path, CountingEmbedder], corpus: Path
) -> None:
    before, directory, embedder = built
    shutil.copy(corpus / "notes.md", corpus / "notes-copy.md")
    index = reload(directory, embedder)
    report = index.update(corpus)
    duplicate = outcome(report, "notes-copy.md")
    assert duplicate.status == "duplicate"
    assert "notes.md" in duplicate.reason
    assert statuses(report)["notes.md"] == "unchanged"
    assert embedder.embedded == 0
    assert index.chunk_count == before.chunk_count
    assert len(index.documents()) == 3
    info = next(d for d in index.documents() if d.source == "notes.md")
    assert info.duplicates == ("notes-copy.md",)
    # searching by the copy's path finds the shared passages
    passages = index.search("JT-60SA tokamak", 3, sources=["notes-copy.md"])
    assert passages and all(p.source == "notes.md" for p in passages)
    assert index.document("notes-copy.md") == index.document("notes.md")
    # two new identical files: one indexed, the other a duplicate
    for name in ("a.txt", "b.txt"):
        (corpus / name).write_text("Hydrogen export terminals in Kobe.\n", encoding="utf-8")
    embedder.reset()
    report = index.update(corpus)
    assert statuses(report)["a.txt"] == "added"
    assert statuses(report)["b.txt"] == "duplicate"
    assert embedder.embedded == outcome(report, "a.txt").chunks


def test_full_update_reembeds_everything(
    built: tuple[Index, Path, CountingEmbedder], corpus: Path
) -> None:
    _, directory, embedder = built
    index = reload(directory, embedder)
    report = index.update(corpus, full=True)
    assert report.full and report.full_reason
    assert embedder.embedded == index.chunk_count == report.embedded_chunks


def test_file_that_becomes_unreadable_is_skipped_and_dropped(
    built: tuple[Index, Path, CountingEmbedder], corpus: Path
) -> None:
    _, directory, embedder = built
    (corpus / "notes.md").write_text("   \n", encoding="utf-8")
    index = reload(directory, embedder)
    report = index.update(corpus)
    assert statuses(report)["notes.md"] == "skipped"
    assert outcome(report, "notes.md").reason
    assert "notes.md" not in [d.source for d in index.documents()]
    assert all(p.source != "notes.md" for p in index.search("JT-60SA tokamak Naka", 10))


def test_skipped_files_are_listed_with_reasons(
    corpus: Path, counting_embedder: CountingEmbedder
) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "junk.pdf").write_bytes(np.random.default_rng(0).bytes(4096))
    (corpus / "table.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    index, report = build_test_index(corpus, embedder=counting_embedder)
    skipped = {o.source: o.reason for o in report.skipped}
    assert set(skipped) == {"empty.txt", "junk.pdf", "table.csv"}
    assert all(skipped.values())
    assert "empty" in skipped["empty.txt"]
    assert ".csv" in skipped["table.csv"]
    assert "pdf" in skipped["junk.pdf"].lower()
    assert report.counts()["added"] == 3
    assert [d.source for d in index.documents()] == ["notes.md", "sub/semis.txt", SEED_NAME]


def test_exclude_keeps_the_index_folder_out(corpus: Path, fake_embedder: HashEmbedder) -> None:
    """An index stored inside the corpus is not indexed as documents."""
    inner = corpus / "idx"
    index, _ = build_test_index(corpus, embedder=fake_embedder)
    index.save(inner)
    again, report = build_test_index(corpus, embedder=fake_embedder, exclude=[inner])
    assert all(not o.source.startswith("idx") for o in report.outcomes)
    assert [d.source for d in again.documents()] == [d.source for d in index.documents()]


# ---------------------------------------------------------------------------------------
# settings changes via the API (api.build_index holds the lock and saves)


@pytest.fixture
def embed_counter(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts texts embedded by any HashEmbedder (as used by model="hash[:DIM]")."""
    counts: list[int] = []
    original = HashEmbedder.embed_batch

    def counting(self: HashEmbedder, texts):  # type: ignore[no-untyped-def]
        counts.append(len(texts))
        return original(self, texts)

    monkeypatch.setattr(HashEmbedder, "embed_batch", counting)
    return counts


def test_api_incremental_then_model_change(
    corpus: Path, tmp_path: Path, embed_counter: list[int]
) -> None:
    directory = tmp_path / "index"
    first = api.build_index(corpus, directory, model="hash:64")
    assert first.full and first.full_reason == "no previous index"
    total = first.chunks + first.embedded_sentences
    assert first.embedded_chunks == first.chunks and first.embedded_sentences > 0
    assert sum(embed_counter) == total
    embed_counter.clear()

    stamp = (directory / "manifest.json").stat().st_mtime_ns
    second = api.build_index(corpus, directory, model="hash:64")
    assert not second.full and sum(embed_counter) == 0
    assert (directory / "manifest.json").stat().st_mtime_ns == stamp  # nothing to save

    changed = api.build_index(corpus, directory, model="hash:32")
    assert changed.full
    assert "model changed" in changed.full_reason
    assert "hash:64" in changed.full_reason and "hash:32" in changed.full_reason
    assert sum(embed_counter) == total
    assert read_manifest(directory)["model"] == {"name": "hash:32", "dimension": 32}
    embed_counter.clear()

    full = api.build_index(corpus, directory, model="hash:32", full=True)
    assert full.full and "full" in full.full_reason
    assert sum(embed_counter) == total


def test_api_chunker_change_forces_full_rebuild(
    corpus: Path, tmp_path: Path, fake_embedder: HashEmbedder, embed_counter: list[int]
) -> None:
    directory = tmp_path / "index"
    other = ChunkerSettings(max_tokens=60, target_tokens=40, min_chars=0)
    old, _ = build_test_index(corpus, embedder=fake_embedder, chunker=other)
    old.save(directory)
    assert read_manifest(directory)["chunker"] == other.to_dict()
    assert old.compatibility(hash_settings()) == "chunker settings changed"
    loaded = Index.load(directory)
    assert loaded.compatibility(hash_settings()) == "chunker settings changed"
    assert loaded.compatibility(hash_settings(chunker=other)) == ""
    assert "model changed" in loaded.compatibility(hash_settings("hash:32"))
    embed_counter.clear()
    report = api.build_index(corpus, directory, model="hash:64")
    assert report.full and report.full_reason == "chunker settings changed"
    assert sum(embed_counter) == report.chunks + report.embedded_sentences
    assert read_manifest(directory)["chunker"] == ChunkerSettings().to_dict()


def test_api_extraction_change_forces_one_full_rebuild(
    corpus: Path, tmp_path: Path, embed_counter: list[int]
) -> None:
    from tpd_qa.ingest import EXTRACTION_VERSION

    directory = tmp_path / "index"
    api.build_index(corpus, directory, model="hash:64")
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["extraction"] == EXTRACTION_VERSION
    del manifest["extraction"]  # as an index saved before PDFium extraction
    manifest_path.write_text(json.dumps(manifest))
    assert Index.load(directory).settings.extraction == 1
    embed_counter.clear()
    report = api.build_index(corpus, directory, model="hash:64")
    assert report.full and report.full_reason == "document text extraction changed"
    assert sum(embed_counter) == report.chunks + report.embedded_sentences
    assert read_manifest(directory)["extraction"] == EXTRACTION_VERSION
    again = api.build_index(corpus, directory, model="hash:64")
    assert not again.full


def test_api_rebuilds_over_a_damaged_index(
    corpus: Path, tmp_path: Path, embed_counter: list[int]
) -> None:
    directory = tmp_path / "index"
    api.build_index(corpus, directory, model="hash")
    generation = directory / read_manifest(directory)["generation"]
    (generation / "vectors.npy").write_bytes(b"garbage")
    report = api.build_index(corpus, directory, model="hash")
    assert report.full and "unusable" in report.full_reason
    assert Index.load(directory).chunk_count == report.chunks


def test_vectors_are_unit_length_and_match_chunk_rows(
    built: tuple[Index, Path, CountingEmbedder],
) -> None:
    _index, directory, _ = built
    loaded = Index.load(directory)
    manifest = read_manifest(directory)
    vectors = np.load(directory / manifest["generation"] / "vectors.npy")
    # row i is the embedding of chunk i: re-embedding a chunk's text gives its row back
    from tpd_qa.index.state import embedding_text as _embedding_text

    chunks = loaded.chunks()
    titles = {d.sha256: d.title for d in loaded.documents()}
    texts = [_embedding_text(titles[c.doc_id], c.section, c.text) for c in chunks]
    assert np.allclose(HashEmbedder(64).embed_batch(texts), vectors, atol=1e-6)
    assert os.path.getsize(directory / "manifest.json") > 0


def test_an_index_of_only_skipped_files_can_be_updated(tmp_path: Path) -> None:
    """No document, but the model was loaded to chunk: its dimension is recorded, so the
    next update (a readable file added) loads it instead of failing on a dimension of 0."""
    from tpd_qa import api

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not a pdf")
    report = api.build_index(corpus, tmp_path / "index", model="hash")
    assert report.documents == 0
    (corpus / "note.txt").write_text("Tokamak fusion research in Naka.\n", encoding="utf-8")
    report = api.build_index(corpus, tmp_path / "index", model="hash")
    assert report.documents == 1 and "unusable" not in report.full_reason
    assert Index.load(tmp_path / "index").search("tokamak", 1)[0].source == "note.txt"


class QuestionEngineEmbedder(CountingEmbedder):
    """A counting embedder with a separate question engine (as the real one on a bf16 CPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.questions: list[list[str]] = []

    def embed_queries(self, texts):  # type: ignore[no-untyped-def]
        self.questions.append(list(texts))
        return self.inner.embed_batch(texts)


def test_questions_are_embedded_by_the_question_engine(corpus: Path) -> None:
    embedder = QuestionEngineEmbedder()
    index, _ = build_test_index(corpus, embedder=embedder)
    passages = embedder.embedded
    assert passages > 0 and embedder.questions == []
    index.search("Which tokamak is the largest?", 3, mode="dense")
    index.search("Which tokamak is the largest?", 3, mode="hybrid")  # remembered
    assert embedder.questions == [["Which tokamak is the largest?"]]
    assert embedder.embedded == passages  # no question went through embed_batch
    # an embedder without embed_queries embeds questions with embed_batch
    plain = CountingEmbedder()
    other, _ = build_test_index(corpus, embedder=plain)
    before = plain.embedded
    other.search("Which tokamak is the largest?", 3, mode="dense")
    assert plain.batches[-1] == ["Which tokamak is the largest?"] and plain.embedded == before + 1
