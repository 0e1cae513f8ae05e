"""Tests of the web UI's logic without a browser: views (HTML), uploads, WebApp actions.

The WebApp tests use the deterministic ``hash`` embedder, so they need no model.
"""

from __future__ import annotations

import html
import re
import socket
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_pdf
from tpd_qa import api, views
from tpd_qa.errors import ConfigError, QueryError
from tpd_qa.records import BuildReport, DocumentInfo, FileOutcome, Passage
from tpd_qa.web import WebApp, _check_port, _is_loopback

MEMO = "us-japan-technology-prosperity-deal.txt"
PAYLOADS = (
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    "[click](javascript:window.__pwned=3)",
    "${window.__pwned=4}",
    "{{constructor.constructor('window.__pwned=5')()}}",
    "&lt;b&gt; &amp; \"quotes\" 'single'",
)


class _Collector(HTMLParser):
    """Collects every start tag with its attributes, to check what markup exists."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(markup: str) -> _Collector:
    collector = _Collector()
    collector.feed(markup)
    collector.close()
    return collector


def strip_marks(markup: str) -> str:
    """Remove only the markup ``highlight`` adds, then unescape: gives back the raw text."""
    bare = re.sub(r'</?mark[^>]*>|<span class="tq-best">|</span>', "", markup)
    return html.unescape(bare)


def passage(text: str, **fields: object) -> Passage:
    values: dict[str, object] = {
        "text": text,
        "score": 0.5,
        "source": "doc.txt",
        "title": "Doc",
        "page": None,
        "section": None,
        "start": 0,
        "end": len(text),
    }
    values.update(fields)
    return Passage(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- views


def test_query_terms_drop_stop_words_and_keep_order() -> None:
    assert views.query_terms("Who signed the memorandum?") == ("signed", "memorandum")
    assert views.query_terms("What will the two countries do about cables?") == (
        "two",
        "countries",
        "cables",
    )
    assert views.query_terms("the of and") == ()


@pytest.mark.parametrize(
    ("word", "term", "expected"),
    [
        ("cables", "cable", True),
        ("Cable", "cables", True),
        ("commitments", "commit", True),
        ("commercialization", "commercialize", True),
        ("co", "signed", False),
        ("significance", "signed", False),
        ("deal", "deals", True),
        ("ideal", "deal", False),
    ],
)
def test_term_matches(word: str, term: str, expected: bool) -> None:
    assert views.term_matches(word, term) is expected


def test_highlight_marks_terms_and_best_sentence() -> None:
    text = "Cables matter. The two countries expand submarine cables. Other text."
    spans = views.sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "Cables matter.",
        "The two countries expand submarine cables.",
        "Other text.",
    ]
    out = views.highlight(text, ("cables",), (spans[1],))
    assert out.count('<mark class="tq-term">') == 2
    assert '<span class="tq-best">The two countries expand submarine <mark' in out
    assert strip_marks(out) == text


def test_highlight_escapes_markup_and_never_marks_inside_an_entity() -> None:
    text = 'AT&T <script>alert("amp")</script> & <img src=x onerror=alert(1)>'
    out = views.highlight(text, ("amp", "script", "img"), ((0, len(text)),))
    assert "<script" not in out and "<img" not in out
    assert "&amp;T" in out  # the entity is intact, not "&<mark>amp</mark>;"
    assert '<mark class="tq-term">amp</mark>' in out  # only the word amp inside the quotes
    assert out.count('<mark class="tq-term">script</mark>') == 2
    assert strip_marks(out) == text
    assert {tag for tag, _ in parse(out).tags} <= {"mark", "span"}


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("ab <>&\"'=/;#x\n.")), max_size=80),
    terms=st.lists(st.sampled_from(["ab", "amp", "lt", "x", "b"]), max_size=3),
    a=st.integers(0, 80),
    b=st.integers(0, 80),
)
def test_highlight_round_trips_any_text(text: str, terms: list[str], a: int, b: int) -> None:
    best = ((min(a, b), max(a, b)),) if a != b else ()
    out = views.highlight(text, terms, best)
    assert strip_marks(out) == text
    assert {tag for tag, _ in parse(out).tags} <= {"mark", "span"}


def test_sentence_spans_keep_list_numbers_with_their_sentence() -> None:
    text = "Intro line\n7. In the field of fusion, JT-60SA helps. 8. Space too.\nDr. Who spoke."
    sentences = [text[a:b] for a, b in views.sentence_spans(text)]
    assert sentences == [
        "Intro line",
        "7. In the field of fusion, JT-60SA helps.",
        "8. Space too.",
        "Dr. Who spoke.",
    ]


def test_best_sentences_need_evidence() -> None:
    assert views.best_sentences([0.0, 0.0]) == []
    assert views.best_sentences([0.2, 0.5, 0.49]) == [1, 2]
    assert views.best_sentences([0.3, 0.1], minimum=0.35) == []


def test_is_weak_uses_similarity_and_word_coverage() -> None:
    assert not views.is_weak(0.6, 0.0)
    assert views.is_weak(0.05, 1.0)
    assert views.is_weak(0.2, 0.0)
    assert not views.is_weak(0.2, 1.0)  # e.g. "What is Open RAN?": words present
    assert not views.is_weak(None, 0.0)


def test_context_window_extends_to_word_boundaries() -> None:
    text = "alpha beta gamma. " * 100
    start, end = 900, 920
    before, after, more_before, more_after = views.context_window(text, start, end, chars=100)
    assert text.endswith(before + text[start:end] + after, 0, end + len(after))
    assert 0 < len(before) <= 100 and 0 < len(after) <= 100
    assert before[0] != " " and more_before and more_after
    assert views.context_window("short", 0, 5) == ("", "", False, False)


def test_render_answer_escapes_every_field() -> None:
    payload = " ".join(PAYLOADS)
    p = passage(
        f"Fusion text {payload}",
        source=f"x\"'><img src=x onerror=alert(9)>{PAYLOADS[0]}.md",
        title=f"Title {payload}",
        section=f"Sec {payload}",
        page=3,
    )
    card = views.Card(p, 0.7, (), before=f"before {payload}", after=f"after {payload}")
    answer = views.Answer(f"question {payload}", "hybrid", (card,), ("fusion",))
    markup = views.render_answer(answer)
    parsed = parse(markup)
    tags = {tag for tag, _ in parsed.tags}
    assert not tags & {"script", "img", "a", "iframe", "svg", "style"}
    for _tag, attrs in parsed.tags:
        assert not [name for name in attrs if name.startswith("on")]
    copy = [attrs for tag, attrs in parsed.tags if tag == "button"]
    assert copy and copy[0]["data-copy"] == views.citation_text(p)
    text = "".join(parsed.text)
    for piece in PAYLOADS:
        assert piece in text  # shown as text, literally
    assert "p.\xa03" in text and "chars 0–" in text and "score 0.5000" in text


def test_render_answer_states() -> None:
    empty = views.render_answer(views.Answer("q", "hybrid", (), filtered=2))
    assert 'data-state="empty"' in empty and "in the selected documents" in empty
    keyword = views.render_answer(views.Answer("q", "bm25", ()))
    assert "Keyword mode needs" in keyword
    weak = views.render_answer(
        views.Answer("q", "dense", (views.Card(passage("text"), 0.05),), weak=True)
    )
    assert "Weak match" in weak and "0.05" in weak and "tq-weak" in weak
    strong = views.render_answer(views.Answer("q", "dense", (views.Card(passage("t"), 0.7),)))
    assert "Weak match" not in strong and strong.count('class="tq-card"') == 1
    error = views.render_state("error", "Failed <b>", "because <script>")
    assert 'role="alert"' in error and "&lt;script&gt;" in error and "<b>" not in error


def test_render_documents_and_report() -> None:
    doc = DocumentInfo(
        source="a<b>.pdf",
        title="<i>T</i>",
        kind="pdf",
        pages=4,
        chunks=7,
        chars=100,
        indexed_at="2026-01-02T03:04:05+00:00",
        sha256="0" * 64,
        duplicates=("copy.pdf",),
    )
    table = views.render_documents([doc])
    assert "&lt;i&gt;T&lt;/i&gt;" in table and "a&lt;b&gt;.pdf" in table
    assert "2026-01-02 03:04 UTC" in table and "copy.pdf" in table and ">7<" in table
    assert 'data-state="noindex"' in views.render_documents(None)
    report = BuildReport(
        outcomes=[
            FileOutcome("new.md", "added", chunks=3),
            FileOutcome("bad.pdf", "skipped", "no text layer <scanned?>"),
            FileOutcome("same.txt", "unchanged", chunks=2),
        ],
        documents=2,
        chunks=5,
        embedded_chunks=3,
    )
    shown = views.render_report(report)
    assert "Incremental update" in shown and "1 skipped" in shown and "1 added" in shown
    assert "no text layer &lt;scanned?&gt;" in shown and "same.txt" not in shown


# ---------------------------------------------------------------------------- WebApp


@pytest.fixture
def app(corpus: Path, tmp_path: Path) -> WebApp:
    web = WebApp(corpus, tmp_path / "index", model="hash")
    assert web.ensure_index() is not None
    return web


def _sources(markup: str) -> list[str]:
    return [
        attrs["data-source"] or ""
        for tag, attrs in parse(markup).tags
        if tag == "article" and "data-source" in attrs
    ]


def test_ensure_index_builds_when_missing_and_reports_progress(
    corpus: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    web = WebApp(corpus, tmp_path / "index", model="hash")
    report = web.ensure_index(lines.append)
    assert report is not None and report.documents == 3
    assert "no index yet" in lines[0] and any("Embedding" in line for line in lines)
    assert lines[-1].startswith("Indexed 3 documents")
    assert WebApp(corpus, tmp_path / "index", model="hash").ensure_index() is None


def test_ask_returns_cited_cards(app: WebApp) -> None:
    markup = app.ask("Which facility will help commercialize fusion?", 3, "hybrid", [])
    assert markup.count('class="tq-card"') == 3
    assert "JT-60SA" in markup and MEMO in _sources(markup)
    assert "Copy citation" in markup and "Show in context" in markup
    assert '<mark class="tq-term">fusion</mark>' in markup


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25", "Semantic", "keyword"])
def test_ask_accepts_every_mode(app: WebApp, mode: str) -> None:
    assert 'class="tq-card"' in app.ask("tokamak in Naka", 2, mode, None)


def test_ask_filters_by_document(app: WebApp) -> None:
    markup = app.ask("supply chains research", 5, "hybrid", ["sub/semis.txt"])
    assert set(_sources(markup)) == {"sub/semis.txt"}
    assert "1 document selected" in markup
    assert "No passages found in the selected documents" in app.ask(
        "fusion", 5, "hybrid", ["gone.txt"]
    )


def test_ask_states_never_show_tracebacks(app: WebApp, monkeypatch: pytest.MonkeyPatch) -> None:
    assert 'data-state="hint"' in app.ask("   ", 5, "hybrid", None)
    bad_mode = app.ask("fusion", 5, "telepathy", None)
    assert 'data-state="error"' in bad_mode and "unknown mode" in bad_mode
    assert app.index is not None

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.index, "search", explode)
    broken = app.ask("fusion", 5, "hybrid", None)
    assert 'data-state="error"' in broken
    assert "secret internal detail" not in broken and "Traceback" not in broken


def test_ask_without_index(tmp_path: Path) -> None:
    web = WebApp(tmp_path / "corpus", tmp_path / "nothing", model="hash")
    web.load()
    assert 'data-state="noindex"' in web.ask("fusion", 5, "hybrid", None)
    assert 'data-state="noindex"' in web.documents_html()
    assert "No index yet" in web.status_html()


def test_search_returns_json_ready_passages(app: WebApp) -> None:
    rows = app.search("JT-60SA tokamak", 2, "keyword", ["notes.md"])
    assert [row["rank"] for row in rows] == [1, 2][: len(rows)] and rows
    assert rows[0]["source"] == "notes.md" and "citation" in rows[0]
    assert isinstance(rows[0]["similarity"], float)
    with pytest.raises(QueryError):
        app.search("   ")


def test_ask_on_an_empty_corpus_says_so(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    web = WebApp(tmp_path / "corpus", tmp_path / "index", model="hash")
    web.ensure_index()
    assert "No documents indexed" in web.ask("fusion", 5, "hybrid", None)
    assert "The index is empty" in web.documents_html()


def test_ask_flags_weak_matches(app: WebApp, monkeypatch: pytest.MonkeyPatch) -> None:
    # The hash embedder's cosines are noise, so pin them: the wiring is what is tested.
    assert app.index is not None
    monkeypatch.setattr(app.index, "similarity", lambda _q, ps: [0.05] * len(ps))
    weak = app.ask("zebra xylophone quasar", 3, "dense", None)
    assert "Weak match" in weak and 'class="tq-best"' not in weak
    monkeypatch.setattr(app.index, "similarity", lambda _q, ps: [0.6] * len(ps))
    strong = app.ask("JT-60SA tokamak Naka superconducting", 3, "hybrid", None)
    assert "Weak match" not in strong and "similarity 0.60" in strong


def test_ask_escapes_document_text(corpus: Path, tmp_path: Path) -> None:
    (corpus / "xss.md").write_text(
        "# Payload <img src=x onerror=alert(1)>\n\nZanzibar payload " + " ".join(PAYLOADS),
        encoding="utf-8",
    )
    web = WebApp(corpus, tmp_path / "index", model="hash")
    web.ensure_index()
    markup = web.ask("Zanzibar payload", 1, "hybrid", None)
    assert _sources(markup) == ["xss.md"]
    tags = {tag for tag, _ in parse(markup).tags}
    assert not tags & {"script", "img", "a"}
    assert "<img" not in web.documents_html() and "&lt;img" in web.documents_html()


def test_source_choices_use_titles(app: WebApp) -> None:
    choices = dict((value, label) for label, value in app.source_choices())
    assert set(choices) == {MEMO, "notes.md", "sub/semis.txt"}
    assert choices["notes.md"] == "Fusion notes"


def test_rebuild_finds_new_files_and_keeps_serving_until_the_switch(
    app: WebApp, corpus: Path
) -> None:
    old = app.index
    (corpus / "cables.txt").write_text(
        "Quokka cable landing stations connect the islands.", encoding="utf-8"
    )
    seen: list[tuple[object, str]] = []

    def during(stage: str, done: int, total: int) -> None:
        if stage == "embedding" and not seen:
            seen.append((app.index, app.ask("Which facility will help fusion?", 1)))

    report = app.rebuild(during)
    assert seen, "the rebuild reported no embedding progress"
    assert seen[0][0] is old and 'class="tq-card"' in seen[0][1]
    assert app.index is not old
    assert "1 added" in report and "cables.txt" in report
    assert _sources(app.ask("Quokka cable landing", 1, "hybrid")) == ["cables.txt"]
    assert "cables.txt" in app.documents_html()


def test_rebuild_reports_skipped_files(app: WebApp, corpus: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"not a pdf")
    report = app.rebuild()
    assert "1 skipped" in report and "broken.pdf" in report


def test_index_rebuilt_elsewhere_is_picked_up(app: WebApp, corpus: Path) -> None:
    old = app.index
    (corpus / "elsewhere.md").write_text("# Elsewhere\n\nWombat observatory.", encoding="utf-8")
    api.build_index(corpus, app.index_dir, model="hash")
    assert 'class="tq-card"' in app.ask("Wombat observatory", 1, "hybrid")  # starts the reload
    for _ in range(400):  # the new index loads in a background thread
        if app.index is not old:
            break
        time.sleep(0.05)
    assert app.index is not old
    assert _sources(app.ask("Wombat observatory", 1, "hybrid")) == ["elsewhere.md"]


def test_upload_refused_without_allow_upload(app: WebApp, corpus: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in corpus.rglob("*"))
    upload = tmp_path / "new.md"
    upload.write_text("# New\n\nOkapi sanctuary.", encoding="utf-8")
    markup = app.upload([str(upload)])
    assert "Uploads are disabled" in markup
    assert sorted(p.name for p in corpus.rglob("*")) == before


def test_upload_stores_indexes_and_explains_refusals(corpus: Path, tmp_path: Path) -> None:
    web = WebApp(corpus, tmp_path / "index", allow_upload=True, model="hash")
    web.ensure_index()
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    good = incoming / "notes.md"  # same name as an existing corpus file
    good.write_text("# Okapi\n\nThe okapi sanctuary opened in Epulu.", encoding="utf-8")
    fake = incoming / "fake.pdf"
    fake.write_bytes(b"just text pretending")
    exe = incoming / "tool.exe"
    exe.write_bytes(b"MZ\x90\x00")
    pdf = make_pdf(incoming / "treaty.pdf", ["The pangolin treaty protects scaly mammals."])
    markup = web.upload([str(good), str(fake), str(exe), str(pdf)])
    assert "2 files added, 2 refused" in markup
    assert "notes-2.md" in markup and "not a PDF" in markup and "unsupported file type" in markup
    assert (corpus / "notes.md").read_text(encoding="utf-8").startswith("# Fusion notes")
    assert (corpus / "notes-2.md").exists() and (corpus / "treaty.pdf").exists()
    assert not (corpus / "fake.pdf").exists() and not (corpus / "tool.exe").exists()
    assert _sources(web.ask("okapi sanctuary Epulu", 1)) == ["notes-2.md"]
    assert _sources(web.ask("pangolin treaty", 1)) == ["treaty.pdf"]
    again = web.upload([str(good)])
    assert "already in the corpus as notes-2.md" in again
    assert "Choose files first" in web.upload([])


def test_is_loopback() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.5")


def test_many_questions_at_once_while_rebuilding(app: WebApp, corpus: Path) -> None:
    (corpus / "extra.md").write_text("# Extra\n\nNarwhal tusk survey.", encoding="utf-8")
    answers: list[str] = []
    lock = threading.Lock()

    def user(n: int) -> None:
        for question in ("fusion facility", "submarine cables", "tokamak Naka"):
            markup = app.ask(f"{question} {n}", 3, ("hybrid", "dense", "bm25")[n % 3], None)
            with lock:
                answers.append(markup)

    threads = [threading.Thread(target=user, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    report = app.rebuild()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == 36
    assert all('class="tq-card"' in markup for markup in answers)
    assert "1 added" in report


def test_check_port_refuses_busy_and_invalid_ports() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match="already in use"):
            _check_port("127.0.0.1", port)
    with pytest.raises(ConfigError, match="not a valid port"):
        _check_port("127.0.0.1", 70000)


def test_only_web_imports_gradio() -> None:
    code = (
        "import sys, tpd_qa, tpd_qa.cli, tpd_qa.api, tpd_qa.views, tpd_qa.uploads, tpd_qa.web;"
        "print('gradio' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"
    sources = Path(__file__).resolve().parents[1] / "src" / "tpd_qa"
    importers = sorted(
        path.name
        for path in sources.glob("*.py")
        if re.search(r"^\s*(import gradio|from gradio)", path.read_text(), re.MULTILINE)
    )
    assert importers == ["web.py"]


def test_build_ui_exposes_named_endpoints(app: WebApp) -> None:
    from tpd_qa.web import build_ui

    demo = build_ui(app)
    names = {fn.api_name for fn in demo.fns.values() if fn.api_name}
    assert {"ask", "search", "rebuild", "upload"} <= names
