"""Promise 6: nothing is unpickled or evaluated, nothing goes out on the network, uploads
stay inside the corpus folder and never replace a file.

(XSS payloads in documents are checked in a real browser by tests/test_browser.py
``test_xss_document_is_shown_as_text_and_runs_nothing``; binding to loopback by default
is checked on a real server by tests/test_hardening_serve.py.)
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from builders import build_test_index
from hardening_support import NETWORK_GUARD, cli_env
from tpd_qa import uploads
from tpd_qa.errors import UploadError
from tpd_qa.index import MARKER, Index

SRC = Path(__file__).resolve().parents[1] / "src" / "tpd_qa"
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "joblib"}
FORBIDDEN_MODULES |= {"cloudpickle", "copyreg"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


# ---------------------------------------------------------------------------- no pickle


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if a.name in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "") in FORBIDDEN_MODULES:
            found.append(f"{where} from {node.module} import")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if isinstance(func, ast.Name) and name in FORBIDDEN_CALLS:
                found.append(f"{where} {name}()")
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg in {"allow_pickle", "trust_remote_code", "weights_only"}:
                    safe = keyword.arg == "weights_only"  # weights_only=True is the safe value
                    if not (isinstance(value, ast.Constant) and value.value is safe):
                        found.append(f"{where} {keyword.arg}={ast.unparse(value)}")
            owner = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
            if name == "load" and owner in {"np", "numpy"}:
                keywords = {k.arg for k in node.keywords}
                if "allow_pickle" not in keywords:
                    found.append(f"{where} np.load without allow_pickle=False")
            if name in {"load", "loads"} and owner in {"torch", "yaml"}:
                found.append(f"{where} {owner}.{name}()")
    return found


def test_source_never_unpickles_or_evaluates() -> None:
    files = sorted(SRC.rglob("*.py"))  # every subpackage too (index/, ingest/, web/, ...)
    assert len(files) >= 60 and any(path.parent.name == "index" for path in files)
    problems = [v for path in files for v in _violations(path)]
    assert problems == []


def test_the_scanner_would_notice(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nimport numpy as np\nx = eval('1')\nnp.load('a.npy')\n"
        "np.load('b.npy', allow_pickle=True)\n"
    )
    assert len(_violations(bad)) == 4


@pytest.fixture
def built(tmp_path: Path, corpus: Path) -> Path:
    index_dir = tmp_path / "index"
    build_test_index(corpus, index_dir)
    return index_dir


def test_index_files_are_plain_data(built: Path) -> None:
    """Only JSON, JSON lines and .npy arrays (numeric, loadable without pickle)."""
    files = [p for p in built.rglob("*") if p.is_file()]
    suffixes = {p.suffix for p in files}
    assert suffixes <= {".json", ".jsonl", ".npy", ".faiss", ""}, suffixes
    assert sorted(p.name for p in files if p.suffix == "") == sorted([".lock", MARKER])
    arrays = [p for p in files if p.suffix == ".npy"]
    assert arrays
    for path in arrays:
        array = np.load(path, allow_pickle=False)
        assert array.dtype != object
    for path in files:
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").splitlines():
                json.loads(line)


def test_loading_and_searching_never_unpickle_or_eval(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def trap(name: str) -> Any:
        def called(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} called while loading the index")

        return called

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, trap(f"pickle.{name}"))
    for name in ("eval", "exec"):
        monkeypatch.setattr(builtins, name, trap(name))
    index = Index.load(built)
    assert index.search("tokamak in Naka", 3)
    assert index.search("semiconductor", 3, mode="bm25")
    monkeypatch.undo()
    assert calls == []


# ---------------------------------------------------------------------------- no network

# Runs `tpd-qa index` then `tpd-qa ask` in one process behind the network guard.
_GUARDED_RUN = (
    NETWORK_GUARD
    + r"""
from tpd_qa.cli import main
corpus, index = sys.argv[1], sys.argv[2]
code = main(["index", "--quiet", "--corpus", corpus, "--index", index])
print("index exit", code, flush=True)
code = main(["ask", "--index", index, "Which tokamak is the largest?"])
print("ask exit", code, flush=True)
sys.exit(code)
"""
)


def _offline_env_removed(log: Path, **extra: str) -> dict[str, str]:
    """No HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE: the code must stay offline by itself."""
    env = cli_env(NET_LOG=str(log), **extra)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        env.pop(name, None)
    return env


def _guarded(tmp_path: Path, corpus: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _GUARDED_RUN, str(corpus), str(tmp_path / "index")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_network_guard_itself_works(tmp_path: Path) -> None:
    """The guard blocks and records an outside connection (so silence below means none)."""
    log = tmp_path / "net.log"
    probe = NETWORK_GUARD + (
        "s = socket.socket()\n"
        "try:\n    s.connect(('192.0.2.1', 80))\nexcept OSError:\n    pass\n"
        "socket.socket().connect_ex(('127.0.0.1', 9))\n"
    )
    subprocess.run([sys.executable, "-c", probe], env=_offline_env_removed(log), check=True)
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "192.0.2.1" in lines[0]


def test_no_network_while_indexing_and_answering_hash_model(tmp_path: Path, corpus: Path) -> None:
    log = tmp_path / "net.log"
    result = _guarded(tmp_path, corpus, _offline_env_removed(log))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "index exit 0" in result.stdout
    assert not log.exists(), log.read_text()


@pytest.mark.model
def test_no_network_while_indexing_and_answering_real_model(tmp_path: Path, corpus: Path) -> None:
    """The real model, and no offline variables set: still not one outside connection."""
    log = tmp_path / "net.log"
    env = _offline_env_removed(log)
    env.pop("TPD_QA_MODEL")
    result = _guarded(tmp_path, corpus, env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "JT-60SA" in result.stdout
    assert not log.exists(), log.read_text()


# ---------------------------------------------------------------------------- uploads

PARTS = ["..", ".", "", "etc", "~", "..\\..", "C:", "corpus"]
names = st.one_of(
    st.text(max_size=80).map(lambda s: s + ".txt"),
    st.builds(
        lambda parts, suffix: "/".join(parts) + suffix,
        st.lists(
            st.sampled_from(["..", ".", "", "etc", "~", "..\\..", "C:", "corpus"]), max_size=6
        ),
        st.sampled_from([".txt", ".md", ".html", ".TXT", ".txt\x00.exe", ".txt.", ""]),
    ),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=names)
@example(name="../../outside/escape.txt")
@example(name="/etc/passwd.txt")
@example(name="..\\..\\windows.txt")
@example(name="existing.txt")
@example(name="link.txt")
@example(name=".hidden.txt")
@example(name="\u202etxt.exe.txt")
def test_uploads_stay_in_the_corpus_and_replace_nothing(tmp_path: Path, name: str) -> None:
    root = tmp_path / f"u{abs(hash(name)) % 10**12}"
    corpus, outside = root / "corpus", root / "outside"
    corpus.mkdir(parents=True)
    outside.mkdir()
    (outside / "escape.txt").write_text("outside, untouched\n")
    (corpus / "existing.txt").write_text("existing, untouched\n")
    (corpus / "link.txt").symlink_to(outside / "escape.txt")
    before = {p: p.read_bytes() for p in (outside / "escape.txt", corpus / "existing.txt")}
    data = f"An uploaded note about tokamaks ({name!r}).\n".encode("utf-8", "replace")
    try:
        stored = uploads.store_upload(corpus, name, data)
    except UploadError as exc:
        assert str(exc).strip()
    else:
        assert stored.path.parent.resolve() == corpus.resolve()
        assert not stored.path.is_symlink()
        assert not stored.name.startswith(".")
        assert stored.path.read_bytes() == data
    for path, content in before.items():
        assert path.read_bytes() == content
    assert sorted(p.name for p in outside.iterdir()) == ["escape.txt"]
    assert not [p for p in corpus.iterdir() if p.name.endswith(".tmp")]
    shutil.rmtree(root)


def test_uploads_are_refused_unless_enabled(tmp_path: Path, corpus: Path) -> None:
    import tpd_qa.web as web

    upload = tmp_path / "new.txt"
    upload.write_text("A brand new note about lunar rovers.\n")
    before = sorted(os.listdir(corpus))
    app = web.WebApp(corpus, tmp_path / "index", model="hash")
    page = app.upload([str(upload)])
    assert "Uploads are disabled" in page
    assert sorted(os.listdir(corpus)) == before
