"""Promise 5 (in-process part): questions keep being answered while the index is rebuilt.

Readers call ``api.retrieve`` in a loop while a writer rebuilds the same index folder
again and again (switching between two corpora); every answer must succeed and be
exactly the old or the new index's answer. The full load test against ``tpd-qa serve``
is ``bench/load.py`` (and the smaller marked test in test_hardening_serve.py).
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from hardening_support import answers, token, write_text_corpus
from tpd_qa import api

pytestmark = pytest.mark.slow

MODEL = "hash:64"
QUESTIONS = [token(2), token(7), token(21), "semiconductor supply chain", "lunar tokamak"]


def test_answers_during_repeated_rebuilds(tmp_path: Path) -> None:
    corpus_a, corpus_b = tmp_path / "a", tmp_path / "b"
    write_text_corpus(corpus_a, 20, seed=3)
    shutil.copytree(corpus_a, corpus_b)
    (corpus_b / "doc0007.txt").unlink()
    write_text_corpus(corpus_b, 3, seed=4, first=20)
    index_dir = tmp_path / "index"
    expected = []
    for corpus in (corpus_a, corpus_b):
        reference = tmp_path / f"ref-{corpus.name}"
        api.build_index(corpus, reference, model=MODEL)
        expected.append(answers(reference, QUESTIONS))
    api.build_index(corpus_a, index_dir, model=MODEL)

    stop = threading.Event()
    failures: list[BaseException] = []
    wrong: list[object] = []
    served = [0]

    def reader() -> None:
        while not stop.is_set():
            try:
                got = [
                    tuple(
                        (p.source, p.start, p.end, p.score)
                        for p in api.retrieve(q, 5, index_dir=index_dir)
                    )
                    for q in QUESTIONS
                ]
            except BaseException as exc:  # any failure at all is what this test looks for
                failures.append(exc)
                return
            # Each question is answered by the old or the new index (the index may change
            # between two questions of one round, so check them one by one).
            wrong.extend(
                (q, a)
                for i, (q, a) in enumerate(zip(QUESTIONS, got, strict=True))
                if a not in (expected[0][i], expected[1][i])
            )
            served[0] += 1

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    try:
        for rebuild in range(16):
            corpus = corpus_b if rebuild % 2 == 0 else corpus_a
            api.build_index(corpus, index_dir, model=MODEL, full=rebuild % 4 == 3, wait=30)
    finally:
        stop.set()
        for thread in readers:
            thread.join(timeout=60)
    assert not failures, repr(failures[:3])
    assert not wrong
    assert served[0] > 0


def test_reader_survives_a_rebuild_that_lands_mid_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic version of the race above: the reader has read the manifest, then a
    rebuild commits a new generation and deletes the one the reader was about to read."""
    import tpd_qa.index.store as index_module

    corpus_a, corpus_b = tmp_path / "a", tmp_path / "b"
    write_text_corpus(corpus_a, 6, seed=5)
    shutil.copytree(corpus_a, corpus_b)
    write_text_corpus(corpus_b, 1, seed=6, first=6)
    index_dir = tmp_path / "index"
    api.build_index(corpus_a, index_dir, model=MODEL)
    original = index_module._verify_files
    raced = []

    def verify_after_a_rebuild(generation: Path, files: dict[str, object]) -> None:
        if not raced:
            raced.append(generation.name)
            api.build_index(corpus_b, index_dir, model=MODEL)
            assert not generation.exists()  # the rebuild deleted what the reader wanted
        original(generation, files)

    monkeypatch.setattr(index_module, "_verify_files", verify_after_a_rebuild)
    passages = api.retrieve(token(6), 3, index_dir=index_dir)
    assert raced
    assert passages[0].source == "doc0006.txt"  # the new index answered
