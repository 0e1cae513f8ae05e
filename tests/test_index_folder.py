"""The index folder must be ours before anything in it is written, replaced or deleted.

Each case was found by hostile use: a rebuild deleted the user's ``gen-*`` files, or
overwrote a web app's ``manifest.json``. The user's files must be byte-identical after.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tpd_qa import api
from tpd_qa.cli import main
from tpd_qa.cli.status import EXIT_ERROR, EXIT_OK
from tpd_qa.errors import ConfigError
from tpd_qa.index import MARKER


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> sha256 of its bytes)."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _index(corpus: Path, index_dir: Path) -> int:
    return main(["index", "--corpus", str(corpus), "--index", str(index_dir), "--quiet"])


@pytest.fixture(autouse=True)
def _hash_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPD_QA_MODEL", "hash")


def test_corpus_and_index_the_same_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = tmp_path / "same"
    (same / "gen-notes").mkdir(parents=True)
    (same / "gen-ai-policy.txt").write_text("AI policy notes.\n", encoding="utf-8")
    (same / "gen-notes" / "meeting.txt").write_text("Meeting notes.\n", encoding="utf-8")
    before = _snapshot(same)

    assert _index(same, same) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tpd-qa: error: ")
    assert "same folder" in err[0]
    assert _snapshot(same) == before
    assert sorted(p.name for p in same.iterdir()) == ["gen-ai-policy.txt", "gen-notes"]


def test_corpus_inside_the_index_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proj = tmp_path / "proj"
    (proj / "docs").mkdir(parents=True)
    (proj / "gen-reports").mkdir()
    (proj / "docs" / "a.txt").write_text("Quantum research cooperation.\n", encoding="utf-8")
    (proj / "gen-reports" / "q3.txt").write_text("Quarterly report.\n", encoding="utf-8")
    (proj / "gen-config.yaml").write_text("mode: fast\n", encoding="utf-8")
    before = _snapshot(proj)

    assert _index(proj / "docs", proj) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "inside the index folder" in err
    assert _snapshot(proj) == before


def test_index_folder_holding_other_files_is_refused(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    webapp = tmp_path / "webapp"
    webapp.mkdir()
    (webapp / "manifest.json").write_text('{"name": "My App", "start_url": "/"}\n')
    (webapp / "index.html").write_text("<!doctype html><title>app</title>\n")
    before = _snapshot(webapp)

    assert _index(corpus, webapp) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert err == (
        f"tpd-qa: error: {webapp} is not a tpd-qa index folder and is not empty; "
        "choose another --index"
    )
    assert _snapshot(webapp) == before
    assert not (webapp / MARKER).exists() and not (webapp / ".lock").exists()


def test_foreign_manifest_alone_is_not_overwritten(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    webapp = tmp_path / "webapp"
    webapp.mkdir()
    (webapp / "manifest.json").write_text('{"name": "My App"}\n')
    (webapp / "app.js").write_text("console.log(1)\n")
    before = _snapshot(webapp)
    assert _index(corpus, webapp) == EXIT_ERROR
    assert _snapshot(webapp) == before


def test_index_inside_corpus_stays_allowed_and_excluded(corpus: Path) -> None:
    index_dir = corpus / ".tpd-index"
    assert _index(corpus, index_dir) == EXIT_OK
    sources = {d.source for d in api.list_documents(index_dir)}
    assert sources and not any(s.startswith(".tpd-index") for s in sources)
    assert (index_dir / MARKER).is_file()


def test_clean_up_deletes_only_what_we_created(corpus: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    assert _index(corpus, index_dir) == EXIT_OK
    # The user (or a careless script) leaves look-alikes in our folder.
    (index_dir / "gen-notes").mkdir()
    (index_dir / "gen-notes" / "keep.txt").write_text("mine\n")
    (index_dir / "gen-ai-policy.txt").write_text("mine too\n")
    (index_dir / ".gen-draft.partial").write_text("and this\n")
    (index_dir / "README.md").write_text("notes about this index\n")
    theirs = {
        name: (index_dir / name).read_bytes()
        for name in ("gen-ai-policy.txt", ".gen-draft.partial", "README.md")
    }
    (corpus / "new.txt").write_text("Fusion energy and magnets.\n", encoding="utf-8")
    assert _index(corpus, index_dir) == EXIT_OK  # saves a new generation, cleans the old
    assert (index_dir / "gen-notes" / "keep.txt").read_text() == "mine\n"
    for name, data in theirs.items():
        assert (index_dir / name).read_bytes() == data
    ours = [p.name for p in index_dir.iterdir() if p.name.startswith("gen-2")]
    assert len(ours) == 1  # exactly the current generation survives
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert ours == [manifest["generation"]]


def test_an_index_saved_before_the_marker_is_still_ours(corpus: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    assert _index(corpus, index_dir) == EXIT_OK
    (index_dir / MARKER).unlink()  # as an index written by an earlier version looks
    (corpus / "new.txt").write_text("Space cooperation on lunar missions.\n")
    assert _index(corpus, index_dir) == EXIT_OK
    assert (index_dir / MARKER).is_file()
    assert any(d.source == "new.txt" for d in api.list_documents(index_dir))


def test_clean_up_without_marker_touches_nothing(corpus: Path, tmp_path: Path) -> None:
    from tpd_qa.index import remove_debris

    index_dir = tmp_path / "index"
    assert _index(corpus, index_dir) == EXIT_OK
    (index_dir / MARKER).unlink()
    stray = index_dir / "gen-20240101T000000-1-000001"
    stray.mkdir()
    remove_debris(index_dir)
    assert stray.is_dir()


def test_empty_existing_folder_is_claimed(corpus: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "empty"
    index_dir.mkdir()
    assert _index(corpus, index_dir) == EXIT_OK
    assert (index_dir / MARKER).is_file()


def test_corpus_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus_file = tmp_path / "notes.txt"
    corpus_file.write_text("not a folder\n")
    index_dir = tmp_path / "index"
    assert _index(corpus_file, index_dir) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "does not exist" not in err
    assert not index_dir.exists()  # nothing created for a refused run


def test_index_that_is_a_file(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_file = tmp_path / "index"
    index_file.write_text("a file\n")
    assert _index(corpus, index_file) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file, not a folder" in err[0]
    assert index_file.read_text() == "a file\n"


def test_library_raises_typed_error(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    with pytest.raises(ConfigError, match="not a tpd-qa index folder"):
        api.build_index(corpus, folder, model="hash")
