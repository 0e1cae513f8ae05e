"""Atomic saves, crash recovery, load-time consistency checks and the rebuild lock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from builders import build_test_index
from tpd_qa import api
from tpd_qa.embedding import HashEmbedder
from tpd_qa.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    TpdQaError,
)
from tpd_qa.index import FORMAT_VERSION, MARKER, Index, index_lock, read_manifest
from tpd_qa.index import store as index_module
from tpd_qa.sparse import SparseIndex

QUESTIONS = ["fusion JT-60SA facility", "financial commitments money", "lithography"]


def answers(index: Index) -> list[list[dict]]:
    return [
        [p.to_dict() for p in index.search(q, 5, mode=m)]
        for q in QUESTIONS
        for m in ("hybrid", "dense", "bm25")
    ]


@pytest.fixture
def saved(corpus: Path, tmp_path: Path, fake_embedder: HashEmbedder) -> tuple[Path, list]:
    """An index of the corpus saved in tmp_path/index, plus its answers."""
    directory = tmp_path / "index"
    build_test_index(corpus, directory, embedder=fake_embedder)
    return directory, answers(Index.load(directory))


def entries(directory: Path) -> list[str]:
    """The folder's entries besides the lock and the ownership marker."""
    return sorted(p.name for p in directory.iterdir() if p.name not in (".lock", MARKER))


def generation_dir(directory: Path) -> Path:
    return directory / read_manifest(directory)["generation"]


def rewrite_checksums(directory: Path) -> None:
    """Make the manifest's checksums match tampered files (to reach deeper checks)."""
    manifest = read_manifest(directory)
    manifest["files"] = index_module._checksums(directory / manifest["generation"])
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


class Crash(Exception):
    pass


def crash(*args: object, **kwargs: object) -> None:
    raise Crash("simulated crash")


# ---------------------------------------------------------------------------------------
# atomic save


def test_save_leaves_one_generation(saved: tuple[Path, list]) -> None:
    directory, _ = saved
    names = entries(directory)
    assert names == sorted(["manifest.json", read_manifest(directory)["generation"]])


@pytest.mark.parametrize(
    "target",
    [
        # while the generation is being staged
        (SparseIndex, "save"),
        (index_module, "_checksums"),
        # after the generation folder is complete, before the manifest is replaced
        (index_module, "_atomic_write_text"),
    ],
    ids=["during-staging", "before-checksums", "before-manifest-replace"],
)
def test_crash_mid_save_keeps_previous_index(
    saved: tuple[Path, list],
    corpus: Path,
    fake_embedder: HashEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    target: tuple[object, str],
) -> None:
    directory, before = saved
    manifest_before = (directory / "manifest.json").read_bytes()
    generation_before = read_manifest(directory)["generation"]

    (corpus / "extra.txt").write_text("Hydrogen ships dock in Kobe harbour.\n", encoding="utf-8")
    index = Index.load(directory, embedder=fake_embedder)
    index.update(corpus)
    with monkeypatch.context() as patch:
        patch.setattr(*target, crash)
        with pytest.raises(Crash):
            index.save(directory)
    # the failed save removed its partial generation at once; the previous index is
    # intact and answers identically
    assert entries(directory) == sorted(["manifest.json", generation_before])
    assert (directory / "manifest.json").read_bytes() == manifest_before
    survivor = Index.load(directory)
    assert answers(survivor) == before
    assert "extra.txt" not in [d.source for d in survivor.documents()]

    # the next successful save removes partial and stale generations
    index.save(directory)
    generation = read_manifest(directory)["generation"]
    assert generation != generation_before
    assert entries(directory) == sorted(["manifest.json", generation])
    assert "extra.txt" in [d.source for d in Index.load(directory).documents()]


def test_crash_before_manifest_replace_via_api(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "index"
    api.build_index(corpus, directory, model="hash")
    before = answers(Index.load(directory))
    (corpus / "sub" / "semis.txt").write_text("Changed text about wafers.\n", encoding="utf-8")
    with monkeypatch.context() as patch:
        patch.setattr(index_module, "_atomic_write_text", crash)
        with pytest.raises(Crash):
            api.build_index(corpus, directory, model="hash")
    assert answers(Index.load(directory)) == before
    report = api.build_index(corpus, directory, model="hash")
    assert report.counts()["changed"] == 1 and not report.full
    assert entries(directory) == sorted(["manifest.json", read_manifest(directory)["generation"]])


def test_old_generation_is_removed_after_replace(saved: tuple[Path, list]) -> None:
    directory, _ = saved
    old = read_manifest(directory)["generation"]
    Index.load(directory).save(directory)
    assert not (directory / old).exists()


# ---------------------------------------------------------------------------------------
# load-time checks


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError) as nothing:
        Index.load(tmp_path / "nothing-here")
    assert nothing.value.remedy == "build"
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexNotFoundError) as empty:
        Index.load(tmp_path / "empty")
    assert empty.value.remedy == "build"
    with pytest.raises(IndexNotFoundError) as via_api:
        api.retrieve("question", index_dir=tmp_path / "empty")
    assert via_api.value.remedy == "build"


@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "empty", "missing"],
)
def test_damaged_vectors(saved: tuple[Path, list], verify: bool, damage: str) -> None:
    directory, _ = saved
    path = generation_dir(directory) / "vectors.npy"
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x93NUMPY not really" + bytes(range(256)) * 4)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
    with pytest.raises(IndexCorruptError) as damaged:
        Index.load(directory, verify=verify)
    assert damaged.value.remedy == "rebuild_full"


@pytest.mark.parametrize("name", ["chunks.jsonl", "documents.jsonl"])
def test_damaged_jsonl(saved: tuple[Path, list], name: str) -> None:
    directory, _ = saved
    path = generation_dir(directory) / name
    path.write_text(path.read_text(encoding="utf-8")[:-40] + "\n", encoding="utf-8")
    with pytest.raises(IndexCorruptError):
        Index.load(directory)
    rewrite_checksums(directory)
    with pytest.raises(IndexCorruptError):
        Index.load(directory)


def test_chunk_count_differs_from_vector_count(saved: tuple[Path, list]) -> None:
    directory, _ = saved
    generation = generation_dir(directory)
    vectors = np.load(generation / "vectors.npy")
    np.save(generation / "vectors.npy", vectors[:-1])
    with pytest.raises(IndexCorruptError):
        Index.load(directory)
    rewrite_checksums(directory)  # even with matching checksums the counts must agree
    with pytest.raises(IndexCorruptError, match="expected"):
        Index.load(directory)


def test_dropped_chunk_line_is_detected(saved: tuple[Path, list]) -> None:
    directory, _ = saved
    path = generation_dir(directory) / "chunks.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]), encoding="utf-8")
    rewrite_checksums(directory)
    with pytest.raises(IndexCorruptError):
        Index.load(directory)


def test_manifest_counts_must_match(saved: tuple[Path, list]) -> None:
    directory, _ = saved
    manifest = read_manifest(directory)
    manifest["counts"]["chunks"] += 1
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexCorruptError):
        Index.load(directory)


def test_chunk_span_outside_document(saved: tuple[Path, list]) -> None:
    directory, _ = saved
    path = generation_dir(directory) / "chunks.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    records[0]["end"] = 10**7
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    rewrite_checksums(directory)
    with pytest.raises(IndexCorruptError):
        Index.load(directory)


def test_missing_generation_folder(saved: tuple[Path, list]) -> None:
    directory, _ = saved
    import shutil

    shutil.rmtree(generation_dir(directory))
    with pytest.raises(IndexCorruptError):
        Index.load(directory)


@pytest.mark.parametrize(
    "content", ["", "{not json", "[1, 2]", '{"format_version": 1}', "\x00\x01"]
)
def test_unreadable_manifest(saved: tuple[Path, list], content: str) -> None:
    directory, _ = saved
    (directory / "manifest.json").write_text(content, encoding="utf-8")
    with pytest.raises(IndexCorruptError):
        Index.load(directory)


@pytest.mark.parametrize("key", ["model", "files", "counts", "chunker", "sparse", "dense"])
@pytest.mark.parametrize("value", ["x", None, [], 7])
def test_manifest_with_wrong_types(saved: tuple[Path, list], key: str, value: object) -> None:
    """A hand-edited or half-written manifest gives a typed error, never a traceback."""
    directory, _ = saved
    manifest = read_manifest(directory)
    manifest[key] = value
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises((IndexCorruptError, IndexMismatchError)):
        Index.load(directory).search("fusion", 3)


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", None), ("dimension", None), ("dimension", "64"), ("dimension", 64.5)],
)
def test_manifest_model_fields(saved: tuple[Path, list], field: str, value: object) -> None:
    directory, _ = saved
    manifest = read_manifest(directory)
    manifest["model"][field] = value
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises((IndexCorruptError, IndexMismatchError)):
        Index.load(directory).search("fusion", 3)


@pytest.mark.parametrize("generation", ["../outside", "gen-x/../../y", 42, "", "gen-missing"])
def test_manifest_generation_must_be_a_folder_name(
    saved: tuple[Path, list], generation: object
) -> None:
    directory, _ = saved
    manifest = read_manifest(directory)
    manifest["generation"] = generation
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexCorruptError):
        Index.load(directory)


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0, None, "1"])
def test_other_format_version(saved: tuple[Path, list], version: object) -> None:
    directory, _ = saved
    manifest = read_manifest(directory)
    manifest["format_version"] = version
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="format"):
        Index.load(directory)


def test_configured_model_must_match(saved: tuple[Path, list]) -> None:
    directory, _ = saved
    with pytest.raises(IndexMismatchError, match="hash:64"):
        Index.load(directory, model="hash:32")
    with pytest.raises(IndexMismatchError):
        Index.load(directory, embedder=HashEmbedder(32))
    with pytest.raises(IndexMismatchError):
        api.load_index(directory, model="hash:32")
    # the same model under another spelling is fine
    assert Index.load(directory, model="hash").model_name == "hash:64"
    assert Index.load(directory, model="hash:64").chunk_count > 0


def test_manifest_dimension_differs_from_model(saved: tuple[Path, list]) -> None:
    """A manifest that claims another dimension than the vectors hold is refused."""
    directory, _ = saved
    manifest = read_manifest(directory)
    manifest["model"]["dimension"] = 32
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(TpdQaError):
        Index.load(directory).search("fusion", 3, mode="dense")


def test_every_load_error_is_a_tpd_qa_error() -> None:
    for error in (IndexCorruptError, IndexMismatchError, IndexNotFoundError, IndexLockedError):
        assert issubclass(error, TpdQaError)


# ---------------------------------------------------------------------------------------
# rebuild lock


def test_index_lock_is_exclusive(tmp_path: Path) -> None:
    directory = tmp_path / "index"
    with index_lock(directory):
        with pytest.raises(IndexLockedError, match="another"), index_lock(directory):
            pass
        with pytest.raises(IndexLockedError):
            api.build_index(tmp_path, directory, model="hash")
    with index_lock(directory):  # released again
        pass


def test_index_lock_held_by_another_process(tmp_path: Path, corpus: Path) -> None:
    directory = tmp_path / "index"
    directory.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from tpd_qa.index import index_lock
                with index_lock({str(directory)!r}):
                    print("locked", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError):
            api.build_index(corpus, directory, model="hash")
        assert not (directory / "manifest.json").exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    report = api.build_index(corpus, directory, model="hash")
    assert report.documents == 3
