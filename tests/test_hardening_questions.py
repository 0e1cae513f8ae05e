"""Promise 4: any question gets results or a clear error, never a traceback or a hang.

Property tests (hypothesis) over arbitrary Unicode (control characters, lone surrogates,
private use, unassigned code points), punctuation only, Japanese, Arabic and mixed
scripts, plus 1 MB questions, through every way in: ``Index.search`` (over a
fake-embedder index), ``api.retrieve`` (over an index on disk), the ``tpd-qa ask``
command line (real processes) and the web UI's callbacks (``WebApp.ask`` returns HTML,
``WebApp.search`` returns JSON rows). A few examples also run through the real model.
"""

from __future__ import annotations

import json
import random
import shutil
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from builders import build_test_index
from conftest import SEED
from hardening_support import assert_clean_error, cli_env, run_cli
from tpd_qa import api
from tpd_qa.embedding import HashEmbedder
from tpd_qa.errors import QueryError, TpdQaError
from tpd_qa.index import Index
from tpd_qa.records import Passage

MEGABYTE = 1 << 20
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

any_unicode = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)
printable = st.text(max_size=300)
punctuation = st.text(st.sampled_from(string.punctuation + "«»¿¡—–…“”‘’・、。！？"), max_size=80)
japanese = st.text(st.characters(min_codepoint=0x3040, max_codepoint=0x30FF), min_size=1)
arabic = st.text(st.characters(min_codepoint=0x0600, max_codepoint=0x06FF), min_size=1)
controls = st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs"]), max_size=50)
questions = st.one_of(any_unicode, printable, punctuation, japanese, arabic, controls)
modes = st.sampled_from(["hybrid", "dense", "bm25", "semantic", "KEYWORD", " Hybrid "])

EXAMPLES = [
    "",
    " \t\n ",
    "\x00\x01\x02\x1b[31m",
    "\u200b\u200e\u202e\ufeff",
    "?!.,;:()[]{}<>",
    "日米技術繁栄協定で半導体について何が決まりましたか？",
    "ما الذي تنص عليه مذكرة التفاهم بشأن أشباه الموصلات؟",
    "Does the deal commit any money? 💴🇯🇵🇺🇸",
    "\ud800 lone surrogate \udfff",
    "' OR 1=1; DROP TABLE chunks; --",
    "<script>alert(1)</script>",
    "%s%s%s%n {0} ${x} {{x}}",
    "a" * 10_000,
    "tokamak " * 2_000,
]


def _huge_questions() -> list[str]:
    rng = random.Random(1)
    letters = "abcdefghijklmnopqrstuvwxyz     日本語العربية"
    return [
        "fusion " * (MEGABYTE // 7),
        "".join(rng.choice(letters) for _ in range(MEGABYTE)),
        "\x00" * MEGABYTE,
        "!" * MEGABYTE,
        " " * (MEGABYTE - 7) + "tokamak",
    ]


HUGE = _huge_questions()


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("questions") / "corpus"
    folder.mkdir()
    shutil.copy(SEED, folder / SEED.name)
    (folder / "notes.md").write_text(
        "# Fusion notes\n\nThe JT-60SA tokamak in Naka is the largest superconducting "
        "tokamak operating today.\n\n## 日本語\n\n日米は半導体と量子技術で協力する。\n",
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="module")
def index(corpus_dir: Path) -> Index:
    built, _ = build_test_index(corpus_dir, embedder=HashEmbedder())
    return built


@pytest.fixture(scope="module")
def index_dir(corpus_dir: Path) -> Path:
    folder = corpus_dir.parent / "index"
    build_test_index(corpus_dir, folder)
    return folder


def _check(result: Any, k: int) -> None:
    assert isinstance(result, list)
    assert len(result) <= k
    for passage in result:
        assert isinstance(passage, Passage)
        assert passage.text and passage.source and passage.citation


def _search_or_clean_error(index: Index, question: str, k: int, mode: str) -> None:
    try:
        result = index.search(question, k, mode=mode)
    except QueryError as exc:
        assert str(exc).strip()
        # only refused when nothing printable but blanks is in it
        assert not any(ch.isprintable() and not ch.isspace() for ch in question)
        return
    _check(result, k)


@SETTINGS
@given(question=questions, k=st.integers(1, 60), mode=modes)
@example(question="\ud800", k=3, mode="dense")
@example(question="\u3000\u00a0", k=1, mode="bm25")
def test_index_search_any_question(index: Index, question: str, k: int, mode: str) -> None:
    _search_or_clean_error(index, question, k, mode)


@SETTINGS
@given(
    question=questions,
    k=st.one_of(st.integers(-10, 10**6), st.booleans(), st.floats(allow_nan=True), st.none()),
    mode=st.one_of(modes, st.text(max_size=20)),
    sources=st.one_of(st.none(), st.lists(st.one_of(any_unicode, st.just(SEED.name)))),
)
def test_index_search_any_parameters(
    index: Index, question: str, k: Any, mode: str, sources: list[str] | None
) -> None:
    """Bad k, unknown modes and arbitrary source filters are QueryErrors, not crashes."""
    try:
        result = index.search(question, k, mode=mode, sources=sources)
    except QueryError as exc:
        assert str(exc).strip()
        return
    _check(result, k)
    if sources is not None:
        assert {p.source for p in result} <= set(sources)


@pytest.mark.parametrize("question", EXAMPLES + HUGE, ids=range(len(EXAMPLES) + len(HUGE)))
@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_index_search_examples_and_one_megabyte(index: Index, question: str, mode: str) -> None:
    _search_or_clean_error(index, question, 5, mode)


def test_similarity_of_hostile_questions(index: Index) -> None:
    passages = index.search("tokamak", 3)
    for question in [*EXAMPLES, *HUGE]:
        try:
            scores = index.similarity(question, passages)
        except QueryError:
            continue
        assert len(scores) == len(passages)
        assert all(-1.001 <= s <= 1.001 for s in scores)


@settings(max_examples=60, deadline=None)
@given(question=questions, mode=modes)
def test_api_retrieve_any_question(index_dir: Path, question: str, mode: str) -> None:
    try:
        result = api.retrieve(question, 4, index_dir=index_dir, mode=mode)
    except QueryError as exc:
        assert str(exc).strip()
        return
    _check(result, 4)


# ---------------------------------------------------------------------------- CLI


CLI_QUESTIONS: list[str | bytes] = [
    "tokamak",
    "",
    "   ",
    "\x01\x02\x7f",
    "?!?!...",
    "日米技術繁栄協定で半導体について",
    "ما هو الاتفاق",
    "\u202eevil\u202c",
    "x" * 100_000,  # argv strings are capped at 128 KiB by the kernel
    b"caf\xe9 \xff\xfe invalid UTF-8 in argv",
]


@pytest.mark.slow
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_cli_ask_hostile_questions(index_dir: Path, as_json: bool) -> None:
    for question in CLI_QUESTIONS:
        args = ["ask", "--index", str(index_dir), *(["--json"] if as_json else []), "--"]
        result = run_cli([*args, question], env=cli_env(), timeout=120)
        assert "Traceback" not in result.stderr, (question, result.stderr)
        if result.returncode == 0:
            assert result.stderr == ""
            if as_json:
                rows = json.loads(result.stdout)
                assert isinstance(rows, list) and all("citation" in r for r in rows)
            else:
                assert result.stdout.strip()
        else:
            assert_clean_error(result, "question")


def test_cli_question_looking_like_an_option(index_dir: Path) -> None:
    """A question starting with ``-`` is answered or is a usage error (exit 2), no traceback."""
    for question in ("-what is this", "-what", "--", "-k"):
        result = run_cli(["ask", "--index", str(index_dir), question], env=cli_env())
        assert result.returncode in (0, 1, 2), result
        assert "Traceback" not in result.stderr
        if result.returncode == 2:
            assert result.stderr.startswith(("usage:", "tpd-qa: error:"))


# ---------------------------------------------------------------------------- web UI


@pytest.fixture(scope="module")
def web_app(corpus_dir: Path, index_dir: Path) -> Any:
    import tpd_qa.web as web

    app = web.WebApp(corpus_dir, index_dir, model="hash")
    app.ensure_index()
    return app


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    question=st.one_of(questions, st.none()),
    k=st.one_of(st.integers(-5, 10**9), st.floats(allow_nan=True), st.none(), st.text(max_size=5)),
    mode=st.one_of(modes, st.text(max_size=10), st.none()),
    sources=st.one_of(st.none(), any_unicode, st.lists(any_unicode, max_size=3)),
)
def test_web_ask_callback_any_input(
    web_app: Any, question: Any, k: Any, mode: Any, sources: Any
) -> None:
    """The page's /ask callback always returns HTML, never raises."""
    page = web_app.ask(question, k, mode, sources)
    assert isinstance(page, str) and page.strip().startswith("<")
    assert "Traceback" not in page
    assert "Something went wrong" not in page  # the catch-all for unexpected exceptions


@settings(max_examples=60, deadline=None)
@given(question=questions, mode=st.one_of(modes, st.text(max_size=10)))
def test_web_search_callback_any_input(web_app: Any, question: str, mode: str) -> None:
    """The /search API returns rows or raises a TpdQaError (shown as a Gradio error)."""
    try:
        rows = web_app.search(question, 5, mode, None)
    except TpdQaError as exc:
        assert str(exc).strip()
        return
    assert isinstance(rows, list)
    json.dumps(rows)


@pytest.mark.parametrize("question", HUGE[:2] + EXAMPLES[:4], ids=range(6))
def test_web_callbacks_huge_and_control_questions(web_app: Any, question: str) -> None:
    page = web_app.ask(question, 5, "hybrid", None)
    assert "Something went wrong" not in page


# ---------------------------------------------------------------------------- real model


@pytest.mark.model
def test_real_model_hostile_questions(corpus_dir: Path) -> None:
    embedder = api.shared_embedder("default")
    built, _ = Index.build(corpus_dir, embedder=embedder)
    for question in [*EXAMPLES, HUGE[0], HUGE[1]]:
        for mode in ("hybrid", "dense"):
            _search_or_clean_error(built, question, 5, mode)
