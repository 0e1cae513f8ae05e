"""Promise 2: a corrupt or mismatched index is detected on load, never used silently.

Each case damages a freshly built index one way, then checks, through the command line:

* ``tpd-qa ask`` exits 1 with exactly one ``tpd-qa: error:`` line that says what to run
  (``tpd-qa index``), and no traceback;
* running what the message says (``tpd-qa index``) repairs it and ``ask`` answers again.

"Resealed" cases also rewrite the manifest's checksums, to get past the checksum check
and prove the deeper checks (shapes, counts, row references) on their own. The basic
load checks are in tests/test_index.py; this is the full matrix.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from builders import build_test_index
from hardening_support import assert_clean_error, cli_env, run_cli
from tpd_qa import api, cli
from tpd_qa.index import Index

Damage = Callable[[Path], None]


# ---------------------------------------------------------------------------------------
# helpers


def _manifest(index_dir: Path) -> dict:
    return json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))


def _write_manifest(index_dir: Path, manifest: dict) -> None:
    (index_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _generation(index_dir: Path) -> Path:
    return index_dir / _manifest(index_dir)["generation"]


def _reseal(index_dir: Path) -> None:
    """Recompute the manifest's file checksums so that only deeper checks can notice."""
    manifest = _manifest(index_dir)
    generation = index_dir / manifest["generation"]
    manifest["files"] = {
        path.relative_to(generation).as_posix(): {
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        for path in sorted(generation.rglob("*"))
        if path.is_file()
    }
    _write_manifest(index_dir, manifest)


def _edit_manifest(change: Callable[[dict], object]) -> Damage:
    def damage(index_dir: Path) -> None:
        manifest = _manifest(index_dir)
        change(manifest)
        _write_manifest(index_dir, manifest)

    return damage


def _resealed(damage: Damage) -> Damage:
    def both(index_dir: Path) -> None:
        damage(index_dir)
        _reseal(index_dir)

    return both


def _file(name: str, change: Callable[[Path], None]) -> Damage:
    def damage(index_dir: Path) -> None:
        change(_generation(index_dir) / name)

    return damage


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(max(64, path.stat().st_size)))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _pickled(path: Path) -> None:
    path.write_bytes(pickle.dumps({"evil": "payload"}))


def _object_array(path: Path) -> None:
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


def _vectors(change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        vectors = np.load(path)
        with open(path, "wb") as handle:
            np.save(handle, change(vectors))

    return edit


def _jsonl(change: Callable[[list[dict]], list[dict]]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        path.write_text("".join(json.dumps(r) + "\n" for r in change(rows)), encoding="utf-8")

    return edit


def _set_chunk(key: str, value: object) -> Callable[[list[dict]], list[dict]]:
    def change(rows: list[dict]) -> list[dict]:
        rows[-1][key] = value
        return rows

    return change


def _delete(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _set(keys: tuple[str, ...], value: object) -> Callable[[dict], None]:
    def change(manifest: dict) -> None:
        target = manifest
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _drop(key: str) -> Callable[[dict], None]:
    return lambda manifest: manifest.pop(key)


def _raw_manifest(data: bytes) -> Damage:
    return lambda index_dir: (index_dir / "manifest.json").write_bytes(data)


def _sparse_rows(index_dir: Path) -> None:
    path = _generation(index_dir) / "sparse" / "params.index.json"
    params = json.loads(path.read_text())
    params["num_docs"] += 1
    path.write_text(json.dumps(params))


# (case id, damage, expected words in the error line besides "run `tpd-qa index")
CASES: list[tuple[str, Damage, str]] = [
    ("vectors-truncated", _file("vectors.npy", _truncate), "damaged"),
    ("vectors-garbage", _file("vectors.npy", _garbage), "damaged"),
    ("vectors-empty", _file("vectors.npy", _empty), "damaged"),
    ("vectors-missing", _file("vectors.npy", _delete), "missing"),
    ("documents-missing", _file("documents.jsonl", _delete), "missing"),
    ("chunks-missing", _file("chunks.jsonl", _delete), "missing"),
    ("sparse-missing", _file("sparse", _delete), "missing"),
    ("sparse-garbage", _file("sparse/vocab.index.json", _garbage), "damaged"),
    ("generation-missing", lambda d: shutil.rmtree(_generation(d)), "missing"),
    ("resealed-vectors-truncated", _resealed(_file("vectors.npy", _truncate)), "damaged"),
    ("resealed-vectors-garbage", _resealed(_file("vectors.npy", _garbage)), "damaged"),
    ("resealed-vectors-empty", _resealed(_file("vectors.npy", _empty)), "damaged"),
    ("resealed-vectors-pickle", _resealed(_file("vectors.npy", _pickled)), "damaged"),
    ("resealed-vectors-object-array", _resealed(_file("vectors.npy", _object_array)), "damaged"),
    (
        "resealed-fewer-vectors",
        _resealed(_file("vectors.npy", _vectors(lambda v: v[:-1]))),
        "vector",
    ),
    (
        "resealed-wider-vectors",
        _resealed(_file("vectors.npy", _vectors(lambda v: np.hstack([v, v])))),
        "vector",
    ),
    ("resealed-fewer-chunks", _resealed(_file("chunks.jsonl", _jsonl(lambda r: r[:-1]))), ""),
    ("resealed-documents-missing", _resealed(_file("documents.jsonl", _delete)), "damaged"),
    ("resealed-documents-garbage", _resealed(_file("documents.jsonl", _garbage)), "damaged"),
    (
        "resealed-chunk-bad-document",
        _resealed(_file("chunks.jsonl", _jsonl(_set_chunk("doc", 99)))),
        "",
    ),
    (
        "resealed-chunk-negative-document",
        _resealed(_file("chunks.jsonl", _jsonl(_set_chunk("doc", -1)))),
        "",
    ),
    (
        "resealed-chunk-bad-span",
        _resealed(_file("chunks.jsonl", _jsonl(_set_chunk("end", 10**9)))),
        "",
    ),
    ("resealed-chunk-missing-field", _resealed(_file("chunks.jsonl", _jsonl(lambda r: [{}]))), ""),
    ("resealed-sparse-rows", _resealed(_sparse_rows), "keyword"),
    (
        "resealed-dense-kind-hnsw-without-file",
        _resealed(_edit_manifest(_set(("dense", "kind"), "hnsw"))),
        "",
    ),
    ("manifest-missing", lambda d: (d / "manifest.json").unlink(), "no index"),
    ("manifest-garbage", _raw_manifest(random.Random(3).randbytes(300)), "unreadable"),
    (
        "manifest-truncated",
        lambda d: _raw_manifest((d / "manifest.json").read_bytes()[:40])(d),
        "unreadable",
    ),
    ("manifest-empty", _raw_manifest(b""), "unreadable"),
    ("manifest-a-list", _raw_manifest(b"[]"), "not an index manifest"),
    ("manifest-other-format-version", _edit_manifest(_set(("format_version",), 999)), "format"),
    ("manifest-no-format-version", _edit_manifest(_drop("format_version")), "format"),
    ("manifest-lacks-files", _edit_manifest(_drop("files")), "files"),
    ("manifest-lacks-model", _edit_manifest(_drop("model")), "model"),
    ("manifest-model-not-an-object", _edit_manifest(_set(("model",), "hash:64")), ""),
    ("manifest-files-not-an-object", _edit_manifest(_set(("files",), ["vectors.npy"])), ""),
    ("manifest-counts-wrong", _edit_manifest(_set(("counts", "chunks"), 1)), "count"),
    ("manifest-dimension-wrong", _edit_manifest(_set(("model", "dimension"), 32)), "vector"),
    ("manifest-dimension-not-a-number", _edit_manifest(_set(("model", "dimension"), "x")), ""),
    (
        "manifest-generation-elsewhere",
        _edit_manifest(_set(("generation",), "gen-nowhere")),
        "missing",
    ),
    ("manifest-generation-escapes", _edit_manifest(_set(("generation",), "gen-x/../../..")), ""),
    ("manifest-chunker-unknown", _edit_manifest(_set(("chunker", "shape"), "round")), "settings"),
    # Built with hash:64 (configured) but the manifest says hash:32.
    ("manifest-other-model", _edit_manifest(_set(("model", "name"), "hash:32")), "built with"),
]


@pytest.fixture
def built(tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TPD_QA_MODEL", "hash")
    monkeypatch.setenv("COLUMNS", "100")
    index_dir = tmp_path / "index"
    build_test_index(corpus, index_dir)
    return index_dir


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``tpd-qa ARGS`` in this process, as a fresh process would run it (no cached index)."""
    api._indexes.clear()
    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str, *must: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("tpd-qa: error: "), lines[0]
    assert "run `tpd-qa index" in lines[0], lines[0]
    for text in must:
        assert text.lower() in lines[0].lower(), (text, lines[0])
    return lines[0]


@pytest.mark.parametrize(("damage", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_damaged_index_is_reported_and_repaired(
    built: Path, corpus: Path, capsys: pytest.CaptureFixture[str], damage: Damage, words: str
) -> None:
    before = _main(capsys, "ask", "tokamak in Naka", "--index", str(built), "--json")
    assert before[0] == 0
    damage(built)
    for command in (["ask", "tokamak in Naka"], ["docs"]):
        code, out, err = _main(capsys, *command, "--index", str(built))
        assert code == cli.ExitStatus.ERROR, (out, err)
        assert out == ""
        _one_error_line(err, *([words] if words else []))
    # Do what the message says; the index works again and answers as before.
    code, out, err = _main(
        capsys, "index", "--quiet", "--corpus", str(corpus), "--index", str(built)
    )
    assert code == 0, (out, err)
    assert _main(capsys, "ask", "tokamak in Naka", "--index", str(built), "--json") == before


def test_index_built_for_another_model_is_refused(
    built: Path, corpus: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The configured model differs from the one the index was built with."""
    monkeypatch.setenv("TPD_QA_MODEL", "hash:32")
    code, _, err = _main(capsys, "ask", "tokamak", "--index", str(built))
    assert code == cli.ExitStatus.ERROR
    _one_error_line(err, "built with model hash:64", "hash:32")
    code, out, _ = _main(capsys, "index", "--quiet", "--corpus", str(corpus), "--index", str(built))
    assert code == 0
    assert "model changed" in out
    assert _main(capsys, "ask", "tokamak", "--index", str(built))[0] == 0
    assert Index.load(built).model_name == "hash:32"


def test_manifest_model_disagrees_with_vectors(
    built: Path, corpus: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No model configured: the index's own model is used, and its vectors do not fit."""
    _edit_manifest(_set(("model", "name"), "hash:32"))(built)
    monkeypatch.delenv("TPD_QA_MODEL")
    code, _, err = _main(capsys, "ask", "tokamak", "--index", str(built))
    assert code == cli.ExitStatus.ERROR
    _one_error_line(err, "dimension")
    monkeypatch.setenv("TPD_QA_MODEL", "hash")
    code, *_ = _main(capsys, "index", "--quiet", "--corpus", str(corpus), "--index", str(built))
    assert code == 0
    assert _main(capsys, "ask", "tokamak", "--index", str(built))[0] == 0


def test_in_process_api_raises_typed_errors(built: Path) -> None:
    """Index.load raises only TpdQaError subclasses for every damage of the matrix."""
    from tpd_qa.errors import TpdQaError

    pristine = built.parent / "pristine"
    shutil.copytree(built, pristine)
    for name, damage, _ in CASES:
        shutil.rmtree(built)
        shutil.copytree(pristine, built)
        damage(built)
        with pytest.raises(TpdQaError):
            Index.load(built).search("tokamak", 3)
        assert name


@pytest.mark.parametrize(
    "case",
    [
        "vectors-truncated",
        "resealed-fewer-chunks",
        "manifest-garbage",
        "manifest-other-format-version",
    ],
)
def test_damaged_index_through_a_real_process(built: Path, case: str) -> None:
    """The same, as a separate process: exit 1, one line, no traceback on stderr."""
    damage = {c[0]: c[1] for c in CASES}[case]
    damage(built)
    result = run_cli(["ask", "tokamak", "--index", str(built)], env=cli_env())
    assert_clean_error(result, "run `tpd-qa index")
    assert result.stdout == ""


def test_no_index_at_all(tmp_path: Path) -> None:
    result = run_cli(["ask", "tokamak", "--index", str(tmp_path / "none")], env=cli_env())
    assert_clean_error(result, "no index", "run `tpd-qa index` first")
    assert not (tmp_path / "none").exists()  # asking never creates an index folder
    assert os.listdir(tmp_path) == []
