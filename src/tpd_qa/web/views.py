"""Pure functions that turn passages, documents and build reports into safe HTML.

No Gradio here: the web UI (:mod:`tpd_qa.web.layout`) hands these strings to ``gr.HTML``.

Every document-supplied string (passage, title, file name, section, reason, message)
goes through :func:`html.escape` and is wrapped in ``<bdi>``, so a right-to-left
override in a file name cannot reorder the rest of a citation; in file names and
messages the bidi controls are also shown visibly (``⟨U+202E⟩``). Highlighting splits
the *raw* text at match boundaries and escapes each piece, so a ``<mark>`` never lands
inside an entity or tag.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from tpd_qa.errors import Remedy, TpdQaError
from tpd_qa.modes import MODE_LABELS
from tpd_qa.records import OCR_LABEL, BuildReport, DocumentInfo, Passage
from tpd_qa.text import heading_lines
from tpd_qa.web.analysis import term_spans

__all__ = [
    "Answer",
    "Card",
    "citation_text",
    "error_message",
    "format_timestamp",
    "highlight",
    "isolate",
    "isolate_name",
    "render_answer",
    "render_documents",
    "render_report",
    "render_state",
    "render_status",
    "render_upload",
]

# Characters that change the direction of the text around them (embeddings, overrides,
# isolates, marks): nothing in a file name or a message needs them.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def isolate(text: str) -> str:
    """Document text as HTML: escaped, in a ``<bdi>`` so its direction stays inside it."""
    return f"<bdi>{escape(text, quote=False)}</bdi>"


def isolate_name(text: str) -> str:
    """A file name or message as HTML: bidi controls made visible, escaped, isolated."""
    shown = _BIDI_CONTROLS.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", text)
    return isolate(shown)


def highlight(
    text: str,
    terms: Sequence[str] = (),
    best: Sequence[tuple[int, int]] = (),
    hidden: Sequence[tuple[int, int]] = (),
    headings: Sequence[tuple[int, int]] = (),
) -> str:
    """Escaped ``text`` with best sentences in ``<span class="tq-best">`` and terms marked;
    ``hidden`` spans (Markdown heading markers) in ``<span class="tq-hide">``, kept in the
    text (a copy of the passage is the source's text) but not shown, and ``headings``
    (the heading's words) in ``<span class="tq-head">``.

    Boundaries are found on the raw text and every piece is escaped on its own, so the
    markup added here is the only markup in the result.
    """
    terms_at = term_spans(text, terms)
    cuts = {0, len(text)}
    for begin, end in [*terms_at, *best, *hidden, *headings]:
        cuts.update((max(0, min(begin, len(text))), max(0, min(end, len(text)))))
    points = sorted(cuts)
    out: list[str] = []
    in_best = False
    for begin, end in itertools.pairwise(points):
        if begin == end:
            continue
        inside_best = any(b <= begin and end <= e for b, e in best)
        if inside_best != in_best:
            out.append('<span class="tq-best">' if inside_best else "</span>")
            in_best = inside_best
        piece = escape(text[begin:end], quote=False)
        if any(b <= begin and end <= e for b, e in hidden):
            piece = f'<span class="tq-hide" aria-hidden="true">{piece}</span>'
        else:
            if any(b <= begin and end <= e for b, e in terms_at):
                piece = f'<mark class="tq-term">{piece}</mark>'
            if any(b <= begin and end <= e for b, e in headings):
                piece = f'<span class="tq-head">{piece}</span>'
        out.append(piece)
    if in_best:
        out.append("</span>")
    return "".join(out)


def citation_text(passage: Passage) -> str:
    """The plain-text citation copied to the clipboard."""
    title = passage.title.strip()
    return f"“{title}”, {passage.citation}" if title else passage.citation


# ---------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class Card:
    """One ranked result: the passage plus what the view needs to present it."""

    passage: Passage
    similarity: float | None = None
    best: tuple[tuple[int, int], ...] = ()
    before: str = ""
    after: str = ""
    more_before: bool = False
    more_after: bool = False
    link: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """Everything shown for one question."""

    question: str
    mode: str
    cards: tuple[Card, ...]
    terms: tuple[str, ...] = ()
    weak: bool = False
    filtered: int = 0
    elapsed_ms: float | None = None


#: The summary line names a mode as the mode buttons do, in lower case.
_MODE_NAMES: dict[str, str] = {mode: label.lower() for mode, label in MODE_LABELS.items()}


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


_SCORE_MEANING = {
    "hybrid": "Fusion score: dense and keyword rankings combined (higher is better)",
    "dense": "Cosine similarity of the passage's vector to the question's",
    "bm25": "BM25 keyword score",
}


def _card(rank: int, card: Card, terms: Sequence[str], mode: str) -> str:
    p = card.passage
    meta = [f'<span class="tq-source">{isolate_name(p.source)}</span>']
    if p.page is not None:
        meta.append(f"<span>p.&nbsp;{int(p.page)}</span>")
    if p.section:
        meta.append(f'<span class="tq-section">{isolate(p.section)}</span>')
    meta.append(f"<span>chars {int(p.start)}–{int(p.end)}</span>")
    if p.ocr:
        confidence = p.ocr_confidence
        tip = f"Read by OCR (mean word confidence {confidence:.0f}/100)" if confidence else ""
        meta.append(
            f'<span class="tq-ocr" title="{escape(tip or "Read by OCR")}: check the page image">'
            f"{escape(OCR_LABEL)}</span>"
        )
    sim = ""
    if card.similarity is not None and math.isfinite(card.similarity):
        width = round(max(0.0, min(1.0, card.similarity)) * 100)
        sim = (
            f'<span class="tq-sim" title="Cosine similarity between question and passage">'
            f'<span class="tq-meter" aria-hidden="true"><span style="width:{width}%"></span>'
            f"</span>similarity {card.similarity:.2f}</span>"
        )
    score = p.score if math.isfinite(p.score) else 0.0
    lines = heading_lines(p.text)
    text = highlight(
        p.text,
        terms,
        card.best,
        [(start, words) for start, words, _end in lines],
        [(words, end) for _start, words, end in lines],
    )
    title = isolate(p.title) if p.title.strip() else isolate_name(p.source)
    before = isolate(card.before) if card.before else ""
    after = isolate(card.after) if card.after else ""
    lead = "… " if card.more_before else ""
    tail = " …" if card.more_after else ""
    return (
        f'<article class="tq-card" data-rank="{rank}" data-source="{escape(p.source)}">'
        '<header class="tq-card-head">'
        f'<span class="tq-rank" aria-label="Rank {rank}">{rank}</span>'
        '<div class="tq-cite">'
        f'<div class="tq-title">{title}</div>'
        f'<div class="tq-meta">{" · ".join(meta)}</div>'
        "</div>"
        f'<div class="tq-scores"><span class="tq-score" '
        f'title="{_SCORE_MEANING.get(mode, "Ranking score")}">'
        f"score {score:.4f}</span>{sim}</div>"
        "</header>"
        f'<p class="tq-text"><bdi>{text}</bdi></p>'
        '<div class="tq-actions">'
        f'<button type="button" class="tq-copy" data-copy="{escape(citation_text(p))}">'
        "Copy citation</button>"
        + (
            f'<button type="button" class="tq-copy-link" data-copy="{escape(card.link)}">'
            "Copy link</button>"
            f'<button type="button" class="tq-open" data-link="{escape(card.link)}">'
            "Open in document</button>"
            if card.link
            else ""
        )
        + "</div>"
        '<details class="tq-context"><summary>Show in context</summary>'
        f'<div class="tq-context-text">{lead}{before}<mark class="tq-here">'
        f"{isolate(p.text)}</mark>{after}{tail}</div></details>"
        "</article>"
    )


def render_answer(answer: Answer) -> str:
    """The result view: a summary line, a weak-match warning if needed, ranked cards."""
    if not answer.cards:
        scope = " in the selected documents" if answer.filtered else ""
        hint = (
            "Keyword mode needs the question's exact words; try Hybrid or Semantic."
            if answer.mode == "bm25"
            else "Try other words, or check the Documents tab for what is indexed."
        )
        return render_state("empty", f"No passages found{scope}", hint)
    parts = [
        f'<p class="tq-summary">{_plural(len(answer.cards), "passage")} for '
        f"<q>{isolate(answer.question)}</q> · "
        f"{escape(_MODE_NAMES.get(answer.mode, answer.mode))}"
    ]
    if answer.filtered:
        parts.append(f" · {_plural(answer.filtered, 'document')} selected")
    if answer.elapsed_ms is not None:
        parts.append(f" · {answer.elapsed_ms:.0f} ms")
    parts.append("</p>")
    if answer.weak:
        best = answer.cards[0].similarity
        figure = f" (best similarity {best:.2f})" if best is not None else ""
        parts.append(
            '<div class="tq-banner tq-warn" role="status"><strong>Weak match.</strong> '
            f"None of these passages clearly answers the question{figure}. The documents "
            "may not cover it: rephrase, or use words that appear in the documents.</div>"
        )
    parts.extend(
        _card(rank, card, answer.terms, answer.mode) for rank, card in enumerate(answer.cards, 1)
    )
    weak = " tq-weak" if answer.weak else ""
    return f'<section class="tq-results{weak}" aria-label="Answers">{"".join(parts)}</section>'


_REBUILD = ": use Rebuild index on the Documents tab"
#: What the page tells the user to do for each remedy an error carries.
REMEDY_TEXT: dict[Remedy, str] = {
    "build": _REBUILD,
    "rebuild": f"{_REBUILD} to rebuild it for this model",
    "rebuild_full": _REBUILD,  # the web rebuild starts afresh from an unusable index
    "wait": "; try again when it finishes",
    "choose_index": "; restart the server with another --index",
    "choose_corpus": "; restart the server with another --corpus",
    "choose_reranker": "; restart the server with TPD_QA_RERANKER set to a CrossEncoder folder, "
    "or unset",
}


def error_message(exc: TpdQaError) -> str:
    """What the page (and the /search API) says about a refused request or failed action:
    the message, then its remedy in the UI's terms."""
    return f"{exc}{REMEDY_TEXT[exc.remedy] if exc.remedy else ''}"


_STATE_ICONS = {"welcome": "?", "empty": "∅", "noindex": "!", "error": "!", "hint": "i", "ok": "✓"}


def render_state(kind: str, title: str, message: str = "") -> str:
    """A boxed message for a non-result state (welcome, empty, noindex, error, hint)."""
    icon = _STATE_ICONS.get(kind, "i")
    role = "alert" if kind == "error" else "status"
    body = f'<p class="tq-state-text">{isolate_name(message)}</p>' if message else ""
    return (
        f'<div class="tq-state tq-state-{escape(kind)}" role="{role}" data-state="{escape(kind)}">'
        f'<span class="tq-state-icon" aria-hidden="true">{icon}</span>'
        f'<div><p class="tq-state-title">{escape(title, quote=False)}</p>{body}</div></div>'
    )


# ---------------------------------------------------------------------------- documents


def format_timestamp(value: str) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM UTC`` (the input itself if unparsable)."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def render_status(
    documents: Sequence[DocumentInfo] | None, model: str = "", *, live: str = ""
) -> str:
    """One line under the page title: what is indexed, with which model, and (when the
    corpus is watched) the watcher's state, e.g. "index updated 12 s ago · 2 added"."""
    watched = f' · <span class="tq-live">{isolate_name(live)}</span>' if live else ""
    if documents is None:
        return f'<p class="tq-status tq-status-missing">No index yet{watched}</p>'
    chunks = sum(d.chunks for d in documents)
    text = f"{_plural(len(documents), 'document')} · {_plural(chunks, 'passage')} indexed"
    if model:
        text += f" · model {escape(model.rsplit('/', 1)[-1])}"
    return f'<p class="tq-status">{text}{watched}</p>'


def render_documents(documents: Sequence[DocumentInfo] | None) -> str:
    """The indexed documents as a table (stacked rows on narrow screens)."""
    if documents is None:
        return render_state(
            "noindex", "No index yet", "Add documents to the corpus folder and rebuild the index."
        )
    if not documents:
        return render_state(
            "empty", "The index is empty", "Add documents to the corpus folder and rebuild."
        )
    rows = []
    for doc in documents:
        duplicates = ""
        if doc.duplicates:
            names = ", ".join(isolate_name(d) for d in doc.duplicates)
            duplicates = f'<div class="tq-dup">identical copies: {names}</div>'
        title = isolate(doc.title) if doc.title.strip() else "<em>untitled</em>"
        rows.append(
            f'<tr data-source="{escape(doc.source)}">'
            f'<td data-label="Title" class="tq-doc-title">{title}</td>'
            f'<td data-label="File" class="tq-source">{isolate_name(doc.source)}{duplicates}</td>'
            f'<td data-label="Type"><span class="tq-kind">{isolate(doc.kind)}</span></td>'
            f'<td data-label="Pages" class="tq-num">{doc.pages if doc.pages else "–"}</td>'
            f'<td data-label="Passages" class="tq-num">{int(doc.chunks)}</td>'
            f'<td data-label="Indexed" class="tq-when">'
            f"{escape(format_timestamp(doc.indexed_at))}</td>"
            "</tr>"
        )
    chunks = sum(d.chunks for d in documents)
    return (
        f'<div class="tq-docs"><p class="tq-docs-summary">{_plural(len(documents), "document")}'
        f" · {_plural(chunks, 'passage')}</p>"
        '<table class="tq-table"><thead><tr><th>Title</th><th>File</th><th>Type</th>'
        '<th class="tq-num">Pages</th><th class="tq-num">Passages</th><th>Indexed</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


_STATUS_ORDER = ("added", "changed", "renamed", "removed", "duplicate", "skipped", "unchanged")


def render_report(report: BuildReport) -> str:
    """A rebuild's outcome: headline, per-status counts and every file that was not unchanged."""
    headline = "Full rebuild" if report.full else "Incremental update"
    reason = f" ({isolate_name(report.full_reason)})" if report.full_reason else ""
    counts = report.counts()
    chips = "".join(
        f'<li class="tq-chip tq-{name}">{counts[name]} {name}</li>'
        for name in _STATUS_ORDER
        if counts.get(name)
    )
    rows = []
    for outcome in sorted(
        report.outcomes,
        key=lambda o: (
            _STATUS_ORDER.index(o.status) if o.status in _STATUS_ORDER else 99,
            o.source,
        ),
    ):
        if outcome.status == "unchanged":
            continue
        chunks = _plural(outcome.chunks, "passage") if outcome.chunks else ""
        rows.append(
            f'<tr class="tq-outcome tq-{escape(outcome.status)}">'
            f'<td data-label="Status"><span class="tq-badge">{escape(outcome.status)}</span></td>'
            f'<td data-label="File" class="tq-source">{isolate_name(outcome.source)}</td>'
            f'<td data-label="Passages">{chunks}</td>'
            f'<td data-label="Why">{isolate_name(outcome.reason)}</td></tr>'
        )
    table = (
        '<table class="tq-table tq-outcomes"><thead><tr><th>Status</th><th>File</th>'
        f"<th>Passages</th><th>Why</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="tq-muted">No file changed since the last build.</p>'
    )
    sentences = (
        f", {_plural(report.embedded_sentences, 'sentence')}" if report.embedded_sentences else ""
    )
    return (
        f'<div class="tq-report" data-state="report"><p><strong>{headline}</strong>{reason}: '
        f"{_plural(report.documents, 'document')}, {_plural(report.chunks, 'passage')} "
        f"({report.embedded_chunks} embedded now{sentences}) in {report.seconds:.1f} s.</p>"
        f'<ul class="tq-chips">{chips}</ul>{table}</div>'
    )


def render_upload(
    accepted: Sequence[tuple[str, str]],
    refused: Sequence[tuple[str, str]],
    report: BuildReport | None = None,
) -> str:
    """What happened to uploaded files: (original name, stored name) and (name, reason)."""
    items = [
        f'<li class="tq-ok"><span class="tq-source">{isolate_name(name)}</span> added as '
        f'<span class="tq-source">{isolate_name(stored)}</span></li>'
        for name, stored in accepted
    ]
    items += [
        f'<li class="tq-refused"><span class="tq-source">{isolate_name(name)}</span> refused: '
        f"{isolate_name(reason)}</li>"
        for name, reason in refused
    ]
    headline = f"{_plural(len(accepted), 'file')} added"
    if refused:
        headline += f", {len(refused)} refused"
    kind = "tq-upload-refused" if refused and not accepted else ""
    built = render_report(report) if report is not None else ""
    return (
        f'<div class="tq-upload {kind}" data-state="upload"><p><strong>{headline}.</strong></p>'
        f'<ul class="tq-upload-list">{"".join(items)}</ul>{built}</div>'
    )
