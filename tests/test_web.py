"""Tests of the web UI's logic without a browser: uploads, WebApp actions, the server.

The views and the text analysis have their own tests (test_views.py).

The WebApp tests use the deterministic ``hash`` embedder, so they need no model.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import make_pdf
from markup import PAYLOADS, parse
from tpd_qa import api
from tpd_qa.errors import ConfigError, QueryError
from tpd_qa.web import WebApp
from tpd_qa.web.download import KEEP_FILES, download_name, page_url
from tpd_qa.web.server import check_port, is_loopback

MEMO = "us-japan-technology-prosperity-deal.txt"


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


def test_card_highlights_the_index_answer_sentence(
    app: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the page marks the same answer sentence as the CLI and the JSON (Passage.answer)
    assert app.index is not None
    monkeypatch.setattr(app.index, "similarity", lambda _q, ps: [0.6] * len(ps))
    question = "JT-60SA tokamak Naka superconducting"
    best = app.index.search(question, 3)[0]
    assert best.answer_start is not None and best.answer != best.text
    markup = app.ask(question, 3, "hybrid", None)
    marked = re.search(r'<span class="tq-best">(.*?)</span>', markup, re.S)
    assert marked is not None
    shown = html.unescape(re.sub(r"<[^>]+>", "", marked.group(1)))
    assert " ".join(shown.split()) == " ".join(best.answer.split())
    assert markup.count('class="tq-best"') == markup.count("<article")  # one per card


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


def testis_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


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
            check_port("127.0.0.1", port)
    with pytest.raises(ConfigError, match="not a valid port"):
        check_port("127.0.0.1", 70000)


def test_only_web_imports_gradio() -> None:
    code = (
        "import sys, tpd_qa, tpd_qa.cli, tpd_qa.api, tpd_qa.uploads, tpd_qa.web,"
        " tpd_qa.web.views, tpd_qa.web.layout, tpd_qa.web.server;"
        "print('gradio' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"
    sources = Path(__file__).resolve().parents[1] / "src" / "tpd_qa"
    importers = sorted(
        path.relative_to(sources).as_posix()
        for path in sources.rglob("*.py")
        if re.search(r"^\s*(import gradio|from gradio)", path.read_text(), re.MULTILINE)
    )
    assert importers == ["web/layout.py"]


def test_build_ui_exposes_named_endpoints(app: WebApp) -> None:
    from tpd_qa.web import build_ui

    demo = build_ui(app)
    names = {fn.api_name for fn in demo.fns.values() if fn.api_name}
    assert {"ask", "search", "rebuild", "upload"} <= names


# ---------------------------------------------------------------------------- one validation


def test_a_lone_surrogate_in_a_question_is_cleaned_for_every_path(
    app: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real tokenizers refuse lone surrogates (TypeError: TextEncodeInput); so does this one."""
    assert app.index is not None
    embedder = app.index.embedder
    plain = embedder.embed_batch
    seen: list[str] = []

    def strict(texts: list[str]) -> object:
        for text in texts:
            text.encode("utf-8")  # raises on a lone surrogate, as the model's tokenizer does
        seen.extend(texts)
        return plain(texts)

    monkeypatch.setattr(embedder, "embed_batch", strict)
    question = "fusion \udfff facility"
    markup = app.ask(question, 3, "hybrid", None)
    assert "Something went wrong" not in markup
    assert markup.count('class="tq-card"') == 3
    assert "fusion   facility" in seen  # cleaned once: the surrogate became a space
    assert all("\udfff" not in text for text in seen)
    rows = app.search(question, 3, "hybrid", None)
    assert len(rows) == 3


BAD_K = [-1, 0, "abc", 10**9, 2.5, float("nan"), True]


@pytest.mark.parametrize("k", BAD_K, ids=repr)
def test_bad_k_gets_one_message_on_ask_and_search(app: WebApp, k: object) -> None:
    with pytest.raises(QueryError) as refused:
        app.search("fusion facility", k, "hybrid", None)
    message = str(refused.value)
    assert message == f"k must be a whole number from 1 to 20, got {k!r}"
    page = app.ask("fusion facility", k, "hybrid", None)
    assert 'data-state="error"' in page and html.escape(message, quote=False) in page


@pytest.mark.parametrize("mode", ["telepathy", "", 3])
def test_bad_mode_gets_one_message_on_ask_and_search(app: WebApp, mode: object) -> None:
    with pytest.raises(QueryError, match="unknown mode") as refused:
        app.search("fusion facility", 5, mode, None)
    page = app.ask("fusion facility", 5, mode, None)
    assert html.escape(str(refused.value), quote=False) in page


def test_k_and_mode_left_out_mean_the_defaults_on_both(app: WebApp) -> None:
    assert len(app.search("fusion facility", None, None, None)) == 5
    assert app.ask("fusion facility", None, None, None).count('class="tq-card"') == 5
    assert len(app.search("fusion facility", "3", "Keyword", [])) <= 3


def test_search_endpoint_turns_refusals_into_gradio_errors(app: WebApp) -> None:
    import gradio as gr

    from tpd_qa.web import build_ui

    demo = build_ui(app)
    (search,) = [fn.fn for fn in demo.fns.values() if fn.api_name == "search"]
    assert search is not None
    for k, mode in ((0, "hybrid"), ("abc", "hybrid"), (10**9, "hybrid"), (5, "telepathy")):
        with pytest.raises(gr.Error) as refused:
            search("fusion facility", k, mode, None)
        assert refused.value.message.startswith(("k must be a whole number", "unknown mode"))
    assert len(search("fusion facility", 2, None, None)) == 2


# ---------------------------------------------------------------------------- downloads

HOSTILE_ROW = '=HYPERLINK("http://evil","x") <script>alert(1)</script> Quetzal ledger'


def test_download_names_are_safe() -> None:
    assert download_name("Who signed the memorandum?", "markdown") == (
        "tpd-qa-who-signed-the-memorandum.md"
    )
    assert download_name("../../etc/passwd", "csv") == "tpd-qa-etc-passwd.csv"
    assert download_name("  ?!  ", "json") == "tpd-qa-answers.json"
    assert download_name("核融合の施設は？", "csv") == "tpd-qa-核融合の施設は.csv"
    long = download_name("fusion " * 40 + "\u202e<evil>", "markdown")
    assert len(long) <= len("tpd-qa-") + 60 + 3 and not long.startswith("tpd-qa--")
    for name in (long, download_name('a/b\\c:d*e"f<g>h|i\x00j', "csv")):
        assert not set(name) & set('/\\:*?"<>|\x00\u202e')


def test_page_url_comes_from_the_referer() -> None:
    assert page_url({"referer": "http://127.0.0.1:7860/?doc=x&pg=2#top"}) == (
        "http://127.0.0.1:7860/"
    )
    assert page_url({"referer": "https://h.example/tpd/"}) == "https://h.example/tpd/"
    assert page_url({}) == "" and page_url({"referer": "javascript:alert(1)"}) == ""


def test_download_writes_the_answers_in_each_format(corpus: Path, tmp_path: Path) -> None:
    (corpus / "ledger.txt").write_text(f"{HOSTILE_ROW}\n", encoding="utf-8")
    web = WebApp(corpus, tmp_path / "index", model="hash")
    web.ensure_index()
    base = "http://127.0.0.1:7860/"
    shown = web.ask("Quetzal ledger", 2, "keyword", None)
    assert "ledger.txt" in _sources(shown)

    path = web.download("Quetzal ledger", 2, "keyword", None, "markdown", base_url=base)
    assert path is not None and path.name == "tpd-qa-quetzal-ledger.md"
    markdown = path.read_text(encoding="utf-8")
    assert markdown.startswith("# Quetzal ledger\n")
    assert "## 1. ledger\\.txt · " in markdown and "score " in markdown
    assert f"[Open in document](<{base}?doc=ledger.txt&start=" in markdown
    assert "<script>" not in markdown and "&lt;script\\>" in markdown

    path = web.download("Quetzal ledger", 2, "keyword", None, "csv", base_url=base)
    assert path is not None and path.suffix == ".csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # spreadsheets then read UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0]["source"] == "ledger.txt" and rows[0]["rank"] == "1"
    assert rows[0]["citation"].startswith("ledger.txt")
    assert rows[0]["text"].startswith("'=HYPERLINK")
    assert rows[0]["link"].startswith(f"{base}?doc=ledger.txt&start=")
    assert all(not v.startswith(("=", "+", "-", "@")) for row in rows for v in row.values())

    path = web.download("Quetzal ledger", 2, "keyword", None, "json")
    assert path is not None
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data[0]["text"].endswith(HOSTILE_ROW) and data[0]["link"].startswith("?doc=ledger.txt")
    assert data[0]["link"].endswith("&sha=" + web.index.document("ledger.txt").sha256[:16])  # type: ignore[union-attr]

    assert web.download("   ", 2, "keyword", None, "csv") is None
    assert web.download("ledger", 2, "telepathy", None, "csv") is None
    with pytest.raises(ValueError):
        web.download("ledger", 2, "keyword", None, "xlsx")  # type: ignore[arg-type]


def test_download_keeps_only_the_newest_files(app: WebApp) -> None:
    paths = [app.download(f"fusion {n}", 1, "keyword", None, "json") for n in range(KEEP_FILES + 3)]
    assert all(p is not None for p in paths)
    kept = [p for p in paths if p is not None and p.exists()]
    assert len(kept) == KEEP_FILES and kept[-1] == paths[-1]
