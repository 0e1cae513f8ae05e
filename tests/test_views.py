"""Unit tests of the answer view: text analysis (terms, sentences) and HTML rendering."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markup import PAYLOADS, parse, passage, strip_marks
from tpd_qa.records import BuildReport, DocumentInfo, FileOutcome
from tpd_qa.sparse import keywords
from tpd_qa.text import heading_marks, sentence_spans
from tpd_qa.web import analysis, views

# ---------------------------------------------------------------------------- analysis


def test_query_terms_drop_stop_words_and_keep_order() -> None:
    # BM25's stop words (bm25s English): question words such as "who" and "what" are
    # not among them, so they are terms, as they are for the keyword search.
    assert analysis.query_terms("Who signed the memorandum?") == ("who", "signed", "memorandum")
    assert analysis.query_terms("What will the two countries do about cables?") == (
        "what",
        "two",
        "countries",
        "do",
        "about",
        "cables",
    )
    assert analysis.query_terms("the of and") == ()
    # Words sharing a stem count once; the first spelling is kept.
    assert analysis.query_terms("Cables, cable and CABLING?") == ("cables",)


def test_terms_are_matched_with_the_keyword_index_stemmer() -> None:
    for word in ("cable", "cables", "Cables"):
        assert keywords(word)[0][2] == keywords("cabling")[0][2]
    text = "The cabling of submarine cables; a cable. Cabled? Incapable."
    spans = analysis.term_spans(text, ("cables",))
    assert [text[a:b] for a, b in spans] == ["cabling", "cables", "cable", "Cabled"]
    assert analysis.term_spans(text, ("the",)) == []  # a stop word, as in BM25


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
    assert analysis.term_matches(word, term) is expected


def test_highlight_marks_terms_and_best_sentence() -> None:
    text = "Cables matter. The two countries expand submarine cables. Other text."
    spans = sentence_spans(text, lines=True)
    assert [text[a:b] for a, b in spans] == [
        "Cables matter.",
        "The two countries expand submarine cables.",
        "Other text.",
    ]
    out = views.highlight(text, ("cables",), (spans[1],))
    assert out.count('<mark class="tq-term">') == 2
    assert '<span class="tq-best">The two countries expand submarine <mark' in out
    assert strip_marks(out) == text


def test_a_passage_shows_a_markdown_heading_without_its_markers() -> None:
    text = "## Submarine cables\n\nThe two countries expand submarine cables.\n### Next"
    assert [text[a:b] for a, b in heading_marks(text)] == ["## ", "### "]
    card = views.Card(passage(text), 0.7, ((21, 63),))
    markup = views.render_answer(views.Answer("cables?", "hybrid", (card,)))
    shown = re.search(r'<p class="tq-text"><bdi>(.*?)</bdi></p>', markup, re.S)
    assert shown is not None
    body = shown.group(1)
    # the markers stay in the text (a copy is the source's text) but are hidden
    assert body.startswith(
        '<span class="tq-hide" aria-hidden="true">## </span><span class="tq-head">Submarine'
    )
    assert '<span class="tq-hide" aria-hidden="true">### </span><span class="tq-head">Next' in body
    # the heading's words end with its line
    assert '<span class="tq-head">Submarine cables</span>\n\n<span class="tq-best">The' in body
    assert strip_marks(body) == text
    assert "tq-hide" in views_css() and "display: none" in views_css()
    # a "#" inside a line is text, not a heading
    assert heading_marks("Item #3 ships.\n#hashtag") == []


def views_css() -> str:
    from importlib import resources

    return resources.files("tpd_qa.web").joinpath("style.css").read_text(encoding="utf-8")


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
    marks = heading_marks(text)
    lines = [(end, text.find("\n", end) % (len(text) + 1)) for _start, end in marks]
    out = views.highlight(text, terms, best, marks, lines)
    assert strip_marks(out) == text
    assert {tag for tag, _ in parse(out).tags} <= {"mark", "span"}


def test_sentence_spans_keep_list_numbers_with_their_sentence() -> None:
    text = "Intro line\n7. In the field of fusion, JT-60SA helps. 8. Space too.\nDr. Who spoke."
    sentences = [text[a:b] for a, b in sentence_spans(text, lines=True)]
    assert sentences == [
        "Intro line",
        "7. In the field of fusion, JT-60SA helps.",
        "8. Space too.",
        "Dr. Who spoke.",
    ]


def test_is_weak_uses_similarity_and_word_coverage() -> None:
    assert not analysis.is_weak(0.6, 0.0)
    assert analysis.is_weak(0.05, 1.0)
    assert analysis.is_weak(0.2, 0.0)
    assert not analysis.is_weak(0.2, 1.0)  # e.g. "What is Open RAN?": words present
    assert not analysis.is_weak(None, 0.0)


def test_context_window_extends_to_word_boundaries() -> None:
    text = "alpha beta gamma. " * 100
    start, end = 900, 920
    before, after, more_before, more_after = analysis.context_window(text, start, end, chars=100)
    assert text.endswith(before + text[start:end] + after, 0, end + len(after))
    assert 0 < len(before) <= 100 and 0 < len(after) <= 100
    assert before[0] != " " and more_before and more_after
    assert analysis.context_window("short", 0, 5) == ("", "", False, False)


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
        embedded_sentences=7,
    )
    shown = views.render_report(report)
    assert "(3 embedded now, 7 sentences)" in shown
    assert "Incremental update" in shown and "1 skipped" in shown and "1 added" in shown
    assert "no text layer &lt;scanned?&gt;" in shown and "same.txt" not in shown


# ---------------------------------------------------------------------------- bidi isolation

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "invoice‮0-48 srahc.exe.txt" reads backwards
SNEAKY = f"invoice{RLO}0-48 srahc.exe.txt"
SHOWN = "invoice⟨U+202E⟩0-48 srahc.exe.txt"


def _visible_text(markup: str) -> str:
    """The text a reader sees (attributes excluded)."""
    return "".join(parse(markup).text)


def test_a_card_isolates_every_document_string_and_shows_bidi_controls() -> None:
    p = passage(
        f"Text {RLO}reversed",
        source=SNEAKY,
        title=f"Title {RLO}x",
        section=f"Sec {RLO}y",
        page=2,
    )
    card = views.Card(p, 0.5, (), before=f"before {RLO}", after=f"after {RLO}")
    markup = views.render_answer(views.Answer(f"q {RLO}", "hybrid", (card,)))
    assert f'<span class="tq-source"><bdi>{SHOWN}</bdi></span>' in markup
    assert f'<div class="tq-title"><bdi>Title {RLO}x</bdi></div>' in markup
    assert f'<span class="tq-section"><bdi>Sec {RLO}y</bdi></span>' in markup
    assert f'<p class="tq-text"><bdi>Text {RLO}reversed</bdi></p>' in markup
    assert f"<bdi>before {RLO}</bdi>" in markup and f"<bdi>after {RLO}</bdi>" in markup
    assert f'<mark class="tq-here"><bdi>Text {RLO}reversed</bdi></mark>' in markup
    assert f"<q><bdi>q {RLO}</bdi></q>" in markup
    # Every override left in the visible text is inside an isolate of its own.
    outside = re.sub(r"<bdi>.*?</bdi>", "", markup, flags=re.DOTALL)
    assert RLO not in _visible_text(outside)
    # The file name itself never carries a live override: it shows as ⟨U+202E⟩.
    assert SHOWN in _visible_text(markup)
    # The copied citation and the data attribute keep the real name.
    copy = [attrs for tag, attrs in parse(markup).tags if tag == "button"]
    assert copy[0]["data-copy"] == views.citation_text(p) and SNEAKY in views.citation_text(p)


def test_document_lists_reports_uploads_and_messages_are_isolated() -> None:
    doc = DocumentInfo(
        source=SNEAKY,
        title=f"T{RLO}",
        kind="txt",
        pages=None,
        chunks=1,
        chars=5,
        indexed_at="2026-01-02T03:04:05+00:00",
        sha256="0" * 64,
        duplicates=(f"copy{RLO}.txt",),
    )
    table = views.render_documents([doc])
    report = views.render_report(
        BuildReport(outcomes=[FileOutcome(SNEAKY, "skipped", f"bad {RLO}name")], documents=0)
    )
    upload = views.render_upload([(SNEAKY, SNEAKY)], [(SNEAKY, f"refused {RLO}")])
    state = views.render_state("error", "Failed", f"cannot read {SNEAKY}: damaged")
    for markup in (table, report, upload, state):
        outside = re.sub(r"<bdi>.*?</bdi>", "", markup, flags=re.DOTALL)
        assert RLO not in _visible_text(outside)
        assert "⟨U+202E⟩" in _visible_text(markup)
    assert f"<bdi>{SHOWN}</bdi>" in table and "<bdi>copy⟨U+202E⟩.txt</bdi>" in table
    assert f"<bdi>T{RLO}</bdi>" in table
    assert f"<bdi>{SHOWN}</bdi>" in report and "<bdi>bad ⟨U+202E⟩name</bdi>" in report
    assert upload.count(f"<bdi>{SHOWN}</bdi>") == 3
    assert f"<bdi>cannot read {SHOWN}: damaged</bdi>" in state
