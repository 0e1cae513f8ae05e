"""The Milvus backend against Milvus Lite (a local .db file): same answers, same citations.

One Milvus Lite server per test module (starting one takes seconds): every test uses
its own index folder, hence its own alias and collections, in the shared .db file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tpd_qa import api, cli
from tpd_qa.errors import ConfigError
from tpd_qa.index import Index, IndexSettings, MilvusStore, open_store, read_manifest
from tpd_qa.index.milvus import connect
from tpd_qa.sparse import SparseSettings

QUESTIONS = [
    "superconducting tokamak in Naka",
    "lithography tools and rare gases",
    "lunar surface work",
    "What does the memorandum say about quantum computing?",
]


def citations(passages: list[api.Passage]) -> list[tuple[object, ...]]:
    return [(p.source, p.title, p.page, p.section, p.start, p.end, p.text) for p in passages]


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("milvus") / "tpdqa.db")


def generations(uri: str, index_dir: Path) -> list[str]:
    alias = read_manifest(index_dir)["backend"]["alias"]
    return sorted(c for c in connect(uri).list_collections() if c.startswith(f"{alias}_gen_"))


def test_build_ask_same_citations_as_default(
    corpus: Path, tmp_path: Path, uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    local, milvus = tmp_path / "local", tmp_path / "milvus"
    api.build_index(corpus, local, model="hash")
    report = api.build_index(corpus, milvus, model="hash", backend="milvus", milvus_uri=uri)
    assert report.chunks > 0
    manifest = read_manifest(milvus)
    assert manifest["backend"]["kind"] == "milvus" and manifest["dense"]["kind"] == "none"
    assert isinstance(open_store(milvus), MilvusStore)  # recorded: queries follow it
    assert not list(milvus.glob("gen-*/sparse"))  # no local keyword index
    assert generations(uri, milvus) == [manifest["backend"]["collection"]]
    for question in QUESTIONS:
        dense_local = api.retrieve(question, 5, index_dir=local, mode="dense")
        dense_milvus = api.retrieve(question, 5, index_dir=milvus, mode="dense")
        assert citations(dense_milvus) == citations(dense_local)
        for mode in ("hybrid", "bm25"):
            ours = api.retrieve(question, 3, index_dir=milvus, mode=mode)
            theirs = api.retrieve(question, 3, index_dir=local, mode=mode)
            assert ours and citations(ours)[:1] == citations(theirs)[:1], (question, mode)
    # a source filter keeps to that document
    only = api.retrieve("tokamak", 5, index_dir=milvus, sources=["notes.md"])
    assert only and {p.source for p in only} == {"notes.md"}
    # the CLI follows the recorded backend
    assert cli.main(["ask", "lithography tools", "--index", str(milvus), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown[0]["source"] == "sub/semis.txt"


def test_incremental_add_change_remove_rename(corpus: Path, tmp_path: Path, uri: str) -> None:
    index_dir = tmp_path / "index"

    def build() -> api.BuildReport:
        return api.build_index(corpus, index_dir, model="hash", backend="milvus", milvus_uri=uri)

    first = build()
    (corpus / "new.txt").write_text("Hydrogen electrolysers for green steel.\n", encoding="utf-8")
    report = build()
    assert {o.source: o.status for o in report.outcomes}["new.txt"] == "added"
    assert report.embedded_chunks == 1
    assert api.retrieve("green steel", 1, index_dir=index_dir)[0].source == "new.txt"

    (corpus / "new.txt").write_text("Offshore wind turbines near Hokkaido.\n", encoding="utf-8")
    report = build()
    assert {o.source: o.status for o in report.outcomes}["new.txt"] == "changed"
    assert api.retrieve("wind turbines Hokkaido", 1, index_dir=index_dir)[0].source == "new.txt"

    shutil.move(corpus / "notes.md", corpus / "renamed.md")
    report = build()
    assert {o.source: o.status for o in report.outcomes}["renamed.md"] == "renamed"
    assert report.embedded_chunks == 0  # renames are not embedded again
    top = api.retrieve("superconducting tokamak", 1, index_dir=index_dir)[0]
    assert top.source == "renamed.md"

    (corpus / "new.txt").unlink()
    report = build()
    assert {o.source: o.status for o in report.outcomes}["new.txt"] == "removed"
    assert report.chunks == first.chunks
    assert all(p.source != "new.txt" for p in api.retrieve("wind", 5, index_dir=index_dir))
    assert len(generations(uri, index_dir)) == 1  # old generations dropped


def test_crash_before_alias_switch_leaves_old_generation_answering(
    corpus: Path, tmp_path: Path, uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = tmp_path / "index"
    api.build_index(corpus, index_dir, model="hash", backend="milvus", milvus_uri=uri)
    before = read_manifest(index_dir)
    alias = before["backend"]["alias"]
    assert connect(uri).describe_alias(alias)["collection_name"] == before["backend"]["collection"]

    written: list[str] = []

    def crash(self: MilvusStore, client: object, alias: str, collection: str) -> None:
        written.append(collection)
        assert connect(uri).has_collection(collection)  # the new generation is complete
        raise KeyboardInterrupt("killed between writing and switching")

    monkeypatch.setattr(MilvusStore, "_switch", crash)
    (corpus / "sub" / "semis.txt").write_text("Nothing about chips any more.\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        api.build_index(corpus, index_dir, model="hash")
    assert written
    after = read_manifest(index_dir)
    assert after["generation"] == before["generation"]
    assert connect(uri).describe_alias(alias)["collection_name"] == before["backend"]["collection"]
    top = api.retrieve("lithography tools and rare gases", 1, index_dir=index_dir)[0]
    assert top.source == "sub/semis.txt" and "lithography" in top.text  # the old answer
    monkeypatch.undo()
    api.build_index(corpus, index_dir, model="hash")  # the next build completes the change
    assert generations(uri, index_dir) == [read_manifest(index_dir)["backend"]["collection"]]
    top = api.retrieve("chips any more", 1, index_dir=index_dir)[0]
    assert top.source == "sub/semis.txt" and "Nothing about chips" in top.text


@pytest.mark.parametrize("bad", ["http://127.0.0.1:9", "not-a-milvus-uri"])
def test_unreachable_uri_fails_with_one_line(
    corpus: Path, tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["index", "--corpus", str(corpus), "--index", str(tmp_path / "index"), "--quiet"]
    status = cli.main([*argv, "--backend", "milvus", "--milvus-uri", bad])
    err = capsys.readouterr().err.strip()
    assert status != 0
    assert len(err.splitlines()) == 1 and "Milvus" in err, err


def test_crash_after_alias_switch_leaves_tpd_qa_readers_on_old_generation(
    corpus: Path, tmp_path: Path, uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the alias switch and the manifest: the manifest still names the old,
    complete generation (not dropped yet), and tpd_qa readers keep answering from it."""
    from tpd_qa.index.store import DirectoryStore

    index_dir = tmp_path / "index"
    api.build_index(corpus, index_dir, model="hash", backend="milvus", milvus_uri=uri)
    before = read_manifest(index_dir)

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed before the manifest was replaced")

    monkeypatch.setattr(DirectoryStore, "commit", crash)
    (corpus / "sub" / "semis.txt").write_text("Nothing about chips any more.\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        api.build_index(corpus, index_dir, model="hash")
    assert read_manifest(index_dir) == before
    assert connect(uri).has_collection(before["backend"]["collection"])
    top = api.retrieve("lithography tools and rare gases", 1, index_dir=index_dir)[0]
    assert top.source == "sub/semis.txt" and "lithography" in top.text  # the old answer
    monkeypatch.undo()
    api.build_index(corpus, index_dir, model="hash")
    assert generations(uri, index_dir) == [read_manifest(index_dir)["backend"]["collection"]]
    assert "Nothing about chips" in api.retrieve("chips", 1, index_dir=index_dir)[0].text


def test_released_collection_is_loaded_again(corpus: Path, tmp_path: Path, uri: str) -> None:
    """A Milvus server started afresh (a new process on a Milvus Lite file, a restarted
    cluster) holds collections released; opening the index loads its generation."""
    index_dir = tmp_path / "index"
    api.build_index(corpus, index_dir, model="hash", backend="milvus", milvus_uri=uri)
    collection = read_manifest(index_dir)["backend"]["collection"]
    connect(uri).release_collection(collection)
    state = connect(uri).get_load_state(collection)["state"]
    assert state.name != "Loaded"
    hits = api.load_index(index_dir).search("lithography tools and rare gases", 1)
    assert hits[0].source == "sub/semis.txt"


def test_keyword_scores_match_the_default_backend(corpus: Path, tmp_path: Path, uri: str) -> None:
    """Milvus's BM25 is fed tpd_qa's own analysed terms (CJK pairs included): the best
    keyword match and its score agree with bm25s's."""
    (corpus / "ja.txt").write_text(
        "日米両国は半導体の供給網を強化する。\n\n量子技術の研究者交流も進める。\n", encoding="utf-8"
    )
    local, milvus = tmp_path / "local", tmp_path / "milvus"
    api.build_index(corpus, local, model="hash")
    api.build_index(corpus, milvus, model="hash", backend="milvus", milvus_uri=uri)
    for question in [*QUESTIONS, "supply_chain co-operation", "半導体の供給網"]:
        ours = api.retrieve(question, 1, index_dir=milvus, mode="bm25")
        theirs = api.retrieve(question, 1, index_dir=local, mode="bm25")
        assert citations(ours) == citations(theirs), question
        assert ours[0].score == pytest.approx(theirs[0].score, rel=0.15), question


def test_milvus_lite_refuses_bm25_parameters_it_would_ignore(
    corpus: Path, tmp_path: Path, uri: str
) -> None:
    """Milvus Lite ignores bm25_k1 / bm25_b: an index asking for other values fails before
    anything is written, instead of ranking by parameters it does not record."""
    settings = IndexSettings(model="hash", sparse=SparseSettings(k1=0.9, b=0.4))
    index, _ = Index.build(corpus, settings=settings)
    store = MilvusStore(tmp_path / "milvus", uri)
    with pytest.raises(ConfigError, match="Milvus Lite ignores BM25"):
        index.save_to(store)
    assert not store.exists()
    Index.build(corpus, settings=IndexSettings(model="hash"))[0].save_to(store)  # defaults work
    assert store.exists()
