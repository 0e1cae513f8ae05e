"""Real-browser tests: ``tpd-qa serve`` in a subprocess, driven by Debian's Chromium.

Two servers run for the whole module, started in parallel:

* ``real``: the bundled all-MiniLM-L6-v2 model over the English memorandum plus a note and a
  document full of XSS payloads; uploads off (the default).
* ``hashed``: the deterministic ``hash`` embedder (fast) with ``--allow-upload``; the
  rebuild and upload tests change its corpus.

Screenshots of the main states go to artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import (
    QUESTION,
    ROOT,
    Server,
    answer_markup,
    ask,
    open_page,
    require_chromium,
    running,
    screenshot,
    start_server,
    wait_answer,
)

pytestmark = pytest.mark.browser

require_chromium()

MEMO = "us-japan-technology-prosperity-deal.txt"
XSS_NAME = "zanzibar \"'><img src=x onerror=window.__pwned=7>.md"
XSS_TEXT = """# Zanzibar <img src=x onerror="window.__pwned=1"> report

Zanzibar payload one: <script>window.__pwned = 2; document.title = 'pwned';</script>
Zanzibar payload two: <img src=x onerror="window.__pwned=3">
Zanzibar payload three: <svg onload="window.__pwned=4"></svg> [link](javascript:window.__pwned=5)
Zanzibar payload four: ${window.__pwned=6} {{constructor.constructor('window.__pwned=8')()}}
Zanzibar payload five: <iframe srcdoc="<script>parent.__pwned=9</script>"></iframe>
"""
NOTES = "# Fusion notes\n\nThe JT-60SA tokamak in Naka is the largest superconducting tokamak.\n"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    real_dir = tmp_path_factory.mktemp("real")
    real_corpus = real_dir / "corpus"
    real_corpus.mkdir()  # the English memorandum only (corpus/ja/ has its own tests)
    shutil.copy(ROOT / "corpus" / MEMO, real_corpus / MEMO)
    (real_corpus / "notes.md").write_text(NOTES, encoding="utf-8")
    (real_corpus / XSS_NAME).write_text(XSS_TEXT, encoding="utf-8")
    hashed_dir = tmp_path_factory.mktemp("hashed")
    hashed_corpus = hashed_dir / "corpus"
    hashed_corpus.mkdir()
    shutil.copy(ROOT / "corpus" / MEMO, hashed_corpus / MEMO)
    (hashed_corpus / "notes.md").write_text(NOTES, encoding="utf-8")
    real = start_server(real_corpus, real_dir / "index", real_dir / "serve.log", model=None)
    hashed = start_server(
        hashed_corpus,
        hashed_dir / "index",
        hashed_dir / "serve.log",
        model="hash",
        allow_upload=True,
    )
    with running(real, hashed):
        yield {"real": real, "hashed": hashed}


@pytest.fixture
def page_for(browser: Any, servers: dict[str, Server]) -> Iterator[Any]:
    """``page_for(name, **context_options)`` opens the app of server ``name``."""
    pages: list[Any] = []

    def make(name: str, **options: Any) -> Any:
        options.setdefault("viewport", {"width": 1200, "height": 900})
        page = open_page(browser, servers[name].url, **options)
        page.add_init_script("window.__pwned = undefined;")
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.context.close()


def cards(page: Any) -> Any:
    return page.locator("#tq-results article.tq-card")


def test_serve_built_the_index_first_and_binds_loopback(servers: dict[str, Server]) -> None:
    for name, documents in (("real", 3), ("hashed", 2)):
        server = servers[name]
        log = server.output()
        assert "Building the index" in log and "no index yet" in log
        assert "Embedding passages" in log and f"Indexed {documents} documents" in log
        assert f"tpd-qa: serving {server.url}" in log
        assert "bound to loopback only" in log
    assert "uploads are off" in servers["real"].output()
    assert "uploads are ON" in servers["hashed"].output()


def test_answers_a_question_about_the_memorandum_with_a_cited_passage(page_for: Any) -> None:
    page = page_for("real")
    screenshot(page, "light-start")
    results = ask(page, "Who signed the memorandum?")
    assert cards(page).count() == 5
    top_two = [cards(page).nth(i) for i in range(2)]
    assert all(card.get_attribute("data-source") == MEMO for card in top_two)
    assert any("co-signed" in card.inner_text() for card in top_two)
    first = cards(page).first
    assert MEMO in first.locator(".tq-meta").inner_text()
    assert "chars" in first.locator(".tq-meta").inner_text()
    assert first.locator("mark.tq-term").count() > 0
    assert results.locator(".tq-best").count() > 0
    context = first.locator("details.tq-context")
    assert not context.locator(".tq-context-text").is_visible()
    context.locator("summary").click()
    assert context.locator(".tq-context-text").is_visible()
    assert "Weak match" not in results.inner_text()
    screenshot(page, "light-answer")


def test_example_question_buttons_ask_them(page_for: Any) -> None:
    page = page_for("real")
    question = "Which facility will help commercialize fusion?"
    before = answer_markup(page)
    page.get_by_role("button", name=question).click()
    wait_answer(page, question, before)
    assert page.locator(QUESTION).first.input_value() == question
    assert "JT-60SA" in cards(page).first.inner_text()


def test_copy_citation_puts_the_citation_on_the_clipboard(page_for: Any) -> None:
    page = page_for("real", permissions=["clipboard-read", "clipboard-write"])
    ask(page, "How will they cooperate on quantum technology?")
    button = cards(page).first.locator("button.tq-copy")
    expected = button.get_attribute("data-copy")
    assert expected and MEMO in expected and "chars" in expected
    button.click()
    page.wait_for_function(
        "() => document.querySelector('#tq-results button.tq-copy').textContent.includes('Copied')"
    )
    assert page.evaluate("navigator.clipboard.readText()") == expected


def test_filter_by_document(page_for: Any) -> None:
    page = page_for("real")
    page.locator("#tq-sources input").click()
    page.get_by_role("option", name="Fusion notes").click()
    page.keyboard.press("Escape")
    results = ask(page, "What will the two countries cooperate on?")
    sources = {cards(page).nth(i).get_attribute("data-source") for i in range(cards(page).count())}
    assert sources == {"notes.md"}
    assert "1 document selected" in results.locator(".tq-summary").inner_text()


def test_xss_document_is_shown_as_text_and_runs_nothing(page_for: Any) -> None:
    page = page_for("real")
    title = page.title()
    results = ask(page, "Zanzibar payload")
    page.locator("#tq-mode").get_by_text("Keyword").click()
    results = ask(page, "Zanzibar payload script img")
    xss = [
        cards(page).nth(i)
        for i in range(cards(page).count())
        if "Zanzibar" in cards(page).nth(i).inner_text()
    ]
    assert xss, results.inner_text()
    for card in xss:
        card.locator("details.tq-context summary").click()
        card.locator("button.tq-copy").hover()
    page.wait_for_timeout(300)  # give any injected handler (onerror, onload) time to fire
    assert page.evaluate("window.__pwned") is None
    text = " ".join(card.inner_text() for card in xss)
    assert "<script>" in text and "onerror" in text  # visible as text
    assert results.locator("script, img, svg, iframe").count() == 0
    page.get_by_role("tab", name="Documents").click()
    page.wait_for_selector("#tq-documents table")
    assert "<img src=x" in page.locator("#tq-documents").inner_text()
    page.get_by_role("tab", name="Ask").click()
    page.locator("#tq-sources input").click()
    page.wait_for_timeout(300)  # let any injected handler fire
    page.keyboard.press("Escape")
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("parent.__pwned") is None
    assert page.title() == title != "pwned"
    screenshot(page, "xss-as-text")


def test_weak_match_and_empty_question_states(page_for: Any) -> None:
    page = page_for("real")
    results = ask(page, "What is the capital of France?")
    assert "Weak match" in results.locator(".tq-banner").inner_text()
    screenshot(page, "weak-match")
    results = ask(page, "   ")
    assert results.locator('[data-state="hint"]').count() == 1


def test_upload_is_absent_and_refused_without_allow_upload(
    page_for: Any, servers: dict[str, Server], tmp_path: Path
) -> None:
    page = page_for("real")
    page.get_by_role("tab", name="Documents").click()
    page.wait_for_selector("#tq-upload-note")
    assert page.locator("input[type=file]").count() == 0
    assert not page.get_by_role("button", name="Add to corpus and index").is_visible()
    from gradio_client import Client, handle_file

    sneaky = tmp_path / "sneaky.md"
    sneaky.write_text("# Sneaky\n\nUnwanted text.", encoding="utf-8")
    before = sorted(p.name for p in servers["real"].corpus.iterdir())
    client = Client(servers["real"].url, verbose=False)
    answer = client.predict([handle_file(str(sneaky))], api_name="/upload")
    assert "Uploads are disabled" in answer
    assert sorted(p.name for p in servers["real"].corpus.iterdir()) == before
    rows = client.predict("Who signed the memorandum?", 2, "hybrid", [], api_name="/search")
    assert rows[0]["source"] == MEMO and rows[0]["rank"] == 1


def test_rebuild_indexes_a_new_file_and_it_becomes_answerable(
    page_for: Any, servers: dict[str, Server]
) -> None:
    page = page_for("hashed")
    (servers["hashed"].corpus / "quokka.txt").write_text(
        "Quokka habitat survey: the Rottnest island quokka colony grew this year.",
        encoding="utf-8",
    )
    page.get_by_role("tab", name="Documents").click()
    assert "quokka.txt" not in page.locator("#tq-documents").inner_text()
    page.get_by_role("button", name="Rebuild index").click()
    report = page.locator("#tq-report .tq-report")
    report.wait_for()
    assert "1 added" in report.inner_text() and "quokka.txt" in report.inner_text()
    page.wait_for_function(
        "() => document.querySelector('#tq-documents').textContent.includes('quokka.txt')"
    )
    screenshot(page, "documents-after-rebuild")
    page.get_by_role("tab", name="Ask").click()
    ask(page, "Rottnest quokka colony")
    assert cards(page).first.get_attribute("data-source") == "quokka.txt"


def test_upload_adds_documents_and_explains_refusals(
    page_for: Any, servers: dict[str, Server], tmp_path: Path
) -> None:
    page = page_for("hashed")
    good = tmp_path / "pangolin treaty.md"
    good.write_text("# Pangolin treaty\n\nThe pangolin treaty protects scaly mammals.")
    fake = tmp_path / "fake.pdf"
    fake.write_bytes(b"plain text pretending to be a PDF")
    page.get_by_role("tab", name="Documents").click()
    page.locator("#tq-upload input[type=file]").set_input_files([str(good), str(fake)])
    page.wait_for_function(  # both files uploaded to the server (download links shown)
        "() => document.querySelectorAll('#tq-upload [data-testid=download-link]').length === 2"
    )
    page.get_by_role("button", name="Add to corpus and index").click()
    outcome = page.locator("#tq-upload-result .tq-upload")
    outcome.wait_for()
    text = outcome.inner_text()
    assert "1 file added, 1 refused" in text and "not a PDF" in text
    assert (servers["hashed"].corpus / "pangolin treaty.md").exists()
    assert not (servers["hashed"].corpus / "fake.pdf").exists()
    screenshot(page, "upload-result")
    page.get_by_role("tab", name="Ask").click()
    ask(page, "pangolin treaty scaly mammals")
    assert cards(page).first.get_attribute("data-source") == "pangolin treaty.md"


def test_dark_theme(page_for: Any) -> None:
    page = page_for("real", color_scheme="dark")
    ask(page, "What will the two countries do about submarine cables?")
    assert page.evaluate("document.body.classList.contains('dark')")
    background = page.evaluate(
        "getComputedStyle(document.querySelector('.tq-card')).backgroundColor"
    )
    channels = [int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]]
    assert sum(channels) / 3 < 80, background  # a dark card, not a white one
    screenshot(page, "dark-answer")


def test_narrow_phone_window(page_for: Any) -> None:
    page = page_for("real", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    ask(page, "Does the deal commit any money?")
    assert "financial commitments" in cards(page).first.inner_text()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    card_box = cards(page).first.bounding_box()
    assert card_box is not None and card_box["width"] <= 390
    screenshot(page, "mobile-answer", full_page=False)
    cards(page).first.scroll_into_view_if_needed()
    screenshot(page, "mobile-card", full_page=False)


def test_a_right_to_left_override_cannot_reorder_a_citation(
    page_for: Any, servers: dict[str, Server]
) -> None:
    rlo = "\u202e"
    name = f"invoice{rlo}0-48 srahc.exe.md"
    (servers["hashed"].corpus / name).write_text(
        f"# Wallaby ledger\n\n## Accounts {rlo} payable\n\n"
        "The wallaby ledger records every invoice paid this year.\n",
        encoding="utf-8",
    )
    from gradio_client import Client

    report = Client(servers["hashed"].url, verbose=False).predict(api_name="/rebuild")
    assert "srahc" in report
    page = page_for("hashed")
    ask(page, "wallaby ledger invoice")
    card = cards(page).first
    assert card.get_attribute("data-source") == name
    meta = card.locator(".tq-meta")
    # The file name shows its override as a visible mark, not as reversed text.
    assert "invoice⟨U+202E⟩0-48 srahc.exe.md" in meta.inner_text()
    # The section keeps its override, isolated: the rest of the line is not reversed.
    boxes = [meta.locator(selector).bounding_box() for selector in (".tq-source", ".tq-section")]
    chars = meta.locator("span", has_text="chars").bounding_box()
    assert boxes[0] and boxes[1] and chars
    # Read left to right, as written: name, then section, then "chars …" after its end.
    # (An override leaking out of the section would put "…0 srahc" inside the section's box.)
    assert boxes[0]["x"] < boxes[1]["x"]
    assert chars["x"] >= boxes[1]["x"] + boxes[1]["width"] - 1
    isolation = page.evaluate(
        "e => getComputedStyle(e).unicodeBidi", meta.locator(".tq-section bdi").element_handle()
    )
    assert isolation in ("isolate", "isolate-override")
    screenshot(page, "bidi-isolated")
