"""Pure functions that turn passages, documents and build reports into safe HTML.

No Gradio here: the web UI (``tpd_qa.web``) calls these and hands the strings to
``gr.HTML``. Every piece of document text (passage, title, file name, section, reason)
goes through :func:`html.escape`; highlighting splits the *raw* text at match
boundaries and escapes each piece, so a ``<mark>`` never lands inside an entity or tag.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from tpd_qa.records import BuildReport, DocumentInfo, Passage

__all__ = [
    "LOW_CONFIDENCE_COSINE",
    "MIN_COSINE_WITH_KEYWORDS",
    "MIN_TERM_COVERAGE",
    "CONTEXT_CHARS",
    "CSS",
    "Card",
    "Answer",
    "query_terms",
    "term_matches",
    "term_spans",
    "sentence_spans",
    "lexical_sentence_scores",
    "best_sentences",
    "term_coverage",
    "is_weak",
    "context_window",
    "highlight",
    "citation_text",
    "render_answer",
    "render_state",
    "render_documents",
    "render_report",
    "render_upload",
    "render_status",
    "format_timestamp",
]

#: Cosine (question vs. best passage, all-MiniLM-L6-v2) below which a match is weak.
#: Measured on corpus/: on-topic questions score 0.29-0.65, off-topic ones -0.08-0.23.
LOW_CONFIDENCE_COSINE = 0.25
#: Below this cosine a result is weak even when the question's words occur in it.
MIN_COSINE_WITH_KEYWORDS = 0.10
#: Share of the question's content words that must occur in the passages to rescue a
#: cosine between the two thresholds above (e.g. "What is Open RAN?" scores 0.12).
MIN_TERM_COVERAGE = 0.5
#: Characters of surrounding text shown on each side by "show in context".
CONTEXT_CHARS = 700

_STOPWORD_TEXT = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into is
    it its itself just me more most my no nor not of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours tell say said says there's what's
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"\w+(?:['’]\w+)*")
_SUFFIXES = (
    "izations", "ization", "isation", "ations", "ation", "ments", "ment", "ings", "ing",
    "ies", "ied", "es", "ed", "er", "s", "e", "y",
)  # fmt: skip
_MIN_PREFIX_STEM = 5
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "vs", "no", "fig", "e.g", "i.e"})
_SENTENCE_END = re.compile(r"[.!?。！？]+[\"'”’)\]]*(?=\s)|\n")


def _stem(word: str) -> str:
    """A deliberately light stemmer: enough to match 'cables' to 'cable', no more."""
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def query_terms(question: str) -> tuple[str, ...]:
    """The content words of a question (lower-case, no stop words, first occurrence order)."""
    terms: list[str] = []
    for match in _WORD.finditer(question.lower().replace("_", " ")):
        word = match.group().replace("’", "'")
        if word.endswith("'s"):
            word = word[:-2]
        if len(word) < 2 or word in _STOPWORDS or word in terms:
            continue
        terms.append(word)
    return tuple(terms)


def term_matches(word: str, term: str) -> bool:
    """Whether a word of the text counts as an occurrence of a question term."""
    stem = _stem(term)
    if _stem(word) == stem:
        return True
    return len(stem) >= _MIN_PREFIX_STEM and word.lower().startswith(stem)


def term_spans(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans of the words in ``text`` that match any of ``terms``."""
    if not terms:
        return []
    return [
        (m.start(), m.end())
        for m in _WORD.finditer(text)
        if any(term_matches(m.group(), term) for term in terms)
    ]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences (and lines) of ``text``, whitespace trimmed.

    A fragment that is only a list number ("7.") or an abbreviation ("Dr.") is joined
    to the sentence that follows it.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    trimmed: list[tuple[int, int]] = []
    for begin, end in spans:
        while begin < end and text[begin].isspace():
            begin += 1
        while end > begin and text[end - 1].isspace():
            end -= 1
        if begin < end:
            trimmed.append((begin, end))
    merged: list[tuple[int, int]] = []
    pending: int | None = None
    for begin, end in trimmed:
        if pending is not None:
            begin, pending = pending, None
        fragment = text[begin:end]
        words = _WORD.findall(fragment)
        tiny = len(words) <= 1 and (
            not words or words[0].isdigit() or words[0].lower() in _ABBREVIATIONS
        )
        if tiny and "\n" not in text[end : end + 1]:
            pending = begin
            continue
        merged.append((begin, end))
    if pending is not None:
        merged.append((pending, trimmed[-1][1]))
    return merged


def lexical_sentence_scores(
    text: str, spans: Sequence[tuple[int, int]], terms: Sequence[str]
) -> list[float]:
    """For each sentence, the share of the question's terms that occur in it (0..1)."""
    if not terms:
        return [0.0 for _ in spans]
    scores = []
    for begin, end in spans:
        words = _WORD.findall(text[begin:end])
        found = sum(1 for term in terms if any(term_matches(w, term) for w in words))
        scores.append(found / len(terms))
    return scores


def best_sentences(
    scores: Sequence[float], *, minimum: float = 0.0, margin: float = 0.02, limit: int = 2
) -> list[int]:
    """Indices of the best-scoring sentences: the top one plus near-ties, in text order.

    Nothing is chosen when the top score is below ``minimum`` or not positive: a
    sentence is only highlighted as an answer when there is evidence for it.
    """
    if not scores:
        return []
    top = max(scores)
    if top <= 0 or top < minimum:
        return []
    ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    chosen = [i for i in ranked[:limit] if scores[i] >= top - margin]
    return sorted(chosen)


def term_coverage(terms: Sequence[str], texts: Iterable[str]) -> float:
    """Share of ``terms`` that occur (as words) anywhere in ``texts`` (0..1; 0 if no terms)."""
    if not terms:
        return 0.0
    words = {w for text in texts for w in _WORD.findall(text)}
    found = sum(1 for term in terms if any(term_matches(w, term) for w in words))
    return found / len(terms)


def is_weak(best_similarity: float | None, coverage: float) -> bool:
    """Whether the best result is a weak match for the question.

    Strong semantic similarity is enough; a middling one counts when most of the
    question's words occur in the passages; ``None`` (no similarity) never flags.
    """
    if best_similarity is None:
        return False
    if best_similarity >= LOW_CONFIDENCE_COSINE:
        return False
    return best_similarity < MIN_COSINE_WITH_KEYWORDS or coverage < MIN_TERM_COVERAGE


def context_window(
    text: str, start: int, end: int, chars: int = CONTEXT_CHARS
) -> tuple[str, str, bool, bool]:
    """Text around ``text[start:end]``: (before, after, more before?, more after?).

    The window is widened to word boundaries, and to a line break when one is near.
    """
    low = max(0, start - chars)
    high = min(len(text), end + chars)
    if low > 0:
        newline = text.find("\n", low, start)
        if newline != -1 and newline - low < chars // 3:
            low = newline + 1
        else:
            space = text.find(" ", low, start)
            low = space + 1 if space != -1 else low
    if high < len(text):
        newline = text.rfind("\n", end, high)
        if newline != -1 and high - newline < chars // 3:
            high = newline
        else:
            space = text.rfind(" ", end, high)
            high = space if space != -1 else high
    return text[low:start], text[end:high], low > 0, high < len(text)


def highlight(
    text: str,
    terms: Sequence[str] = (),
    best: Sequence[tuple[int, int]] = (),
) -> str:
    """Escaped ``text`` with best sentences in ``<span class="tq-best">`` and terms marked.

    Boundaries are found on the raw text and every piece is escaped on its own, so the
    markup added here is the only markup in the result.
    """
    terms_at = term_spans(text, terms)
    cuts = {0, len(text)}
    for begin, end in [*terms_at, *best]:
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
        if any(b <= begin and end <= e for b, e in terms_at):
            piece = f'<mark class="tq-term">{piece}</mark>'
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


_MODE_LABELS = {"hybrid": "hybrid", "dense": "semantic", "bm25": "keyword"}


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


_SCORE_MEANING = {
    "hybrid": "Fusion score: dense and keyword rankings combined (higher is better)",
    "dense": "Cosine similarity of the passage's vector to the question's",
    "bm25": "BM25 keyword score",
}


def _card(rank: int, card: Card, terms: Sequence[str], mode: str) -> str:
    p = card.passage
    meta = [f'<span class="tq-source">{escape(p.source)}</span>']
    if p.page is not None:
        meta.append(f"<span>p.&nbsp;{int(p.page)}</span>")
    if p.section:
        meta.append(f'<span class="tq-section">{escape(p.section)}</span>')
    meta.append(f"<span>chars {int(p.start)}–{int(p.end)}</span>")
    sim = ""
    if card.similarity is not None and math.isfinite(card.similarity):
        width = round(max(0.0, min(1.0, card.similarity)) * 100)
        sim = (
            f'<span class="tq-sim" title="Cosine similarity between question and passage">'
            f'<span class="tq-meter" aria-hidden="true"><span style="width:{width}%"></span>'
            f"</span>similarity {card.similarity:.2f}</span>"
        )
    score = p.score if math.isfinite(p.score) else 0.0
    title = escape(p.title) if p.title.strip() else escape(p.source)
    before = escape(card.before, quote=False)
    after = escape(card.after, quote=False)
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
        f'<p class="tq-text">{highlight(p.text, terms, card.best)}</p>'
        '<div class="tq-actions">'
        f'<button type="button" class="tq-copy" data-copy="{escape(citation_text(p))}">'
        "Copy citation</button>"
        "</div>"
        '<details class="tq-context"><summary>Show in context</summary>'
        f'<div class="tq-context-text">{lead}{before}<mark class="tq-here">'
        f"{escape(p.text, quote=False)}</mark>{after}{tail}</div></details>"
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
        f"<q>{escape(answer.question, quote=False)}</q> · "
        f"{_MODE_LABELS.get(answer.mode, escape(answer.mode))}"
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


_STATE_ICONS = {"welcome": "?", "empty": "∅", "noindex": "!", "error": "!", "hint": "i", "ok": "✓"}


def render_state(kind: str, title: str, message: str = "") -> str:
    """A boxed message for a non-result state (welcome, empty, noindex, error, hint)."""
    icon = _STATE_ICONS.get(kind, "i")
    role = "alert" if kind == "error" else "status"
    body = f'<p class="tq-state-text">{escape(message, quote=False)}</p>' if message else ""
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


def render_status(documents: Sequence[DocumentInfo] | None, model: str = "") -> str:
    """One line under the page title: what is indexed and with which model."""
    if documents is None:
        return '<p class="tq-status tq-status-missing">No index yet</p>'
    chunks = sum(d.chunks for d in documents)
    text = f"{_plural(len(documents), 'document')} · {_plural(chunks, 'passage')} indexed"
    if model:
        text += f" · model {escape(model.rsplit('/', 1)[-1])}"
    return f'<p class="tq-status">{text}</p>'


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
            names = ", ".join(escape(d) for d in doc.duplicates)
            duplicates = f'<div class="tq-dup">identical copies: {names}</div>'
        title = escape(doc.title) if doc.title.strip() else "<em>untitled</em>"
        rows.append(
            f'<tr data-source="{escape(doc.source)}">'
            f'<td data-label="Title" class="tq-doc-title">{title}</td>'
            f'<td data-label="File" class="tq-source">{escape(doc.source)}{duplicates}</td>'
            f'<td data-label="Type"><span class="tq-kind">{escape(doc.kind)}</span></td>'
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
    reason = f" ({escape(report.full_reason)})" if report.full_reason else ""
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
            f'<td data-label="File" class="tq-source">{escape(outcome.source)}</td>'
            f'<td data-label="Passages">{chunks}</td>'
            f'<td data-label="Why">{escape(outcome.reason)}</td></tr>'
        )
    table = (
        '<table class="tq-table tq-outcomes"><thead><tr><th>Status</th><th>File</th>'
        f"<th>Passages</th><th>Why</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="tq-muted">No file changed since the last build.</p>'
    )
    return (
        f'<div class="tq-report" data-state="report"><p><strong>{headline}</strong>{reason}: '
        f"{_plural(report.documents, 'document')}, {_plural(report.chunks, 'passage')} "
        f"({report.embedded_chunks} embedded now) in {report.seconds:.1f} s.</p>"
        f'<ul class="tq-chips">{chips}</ul>{table}</div>'
    )


def render_upload(
    accepted: Sequence[tuple[str, str]],
    refused: Sequence[tuple[str, str]],
    report: BuildReport | None = None,
) -> str:
    """What happened to uploaded files: (original name, stored name) and (name, reason)."""
    items = [
        f'<li class="tq-ok"><span class="tq-source">{escape(name)}</span> added as '
        f'<span class="tq-source">{escape(stored)}</span></li>'
        for name, stored in accepted
    ]
    items += [
        f'<li class="tq-refused"><span class="tq-source">{escape(name)}</span> refused: '
        f"{escape(reason)}</li>"
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


# ---------------------------------------------------------------------------- styles

CSS = """
.gradio-container { max-width: 1040px !important; margin: 0 auto !important; }
#tq-header h1 { font-size: 1.6rem; font-weight: 700; margin: 0; letter-spacing: -0.01em; }
#tq-header .tq-tagline { margin: .15rem 0 0; color: var(--body-text-color-subdued); }
.tq-status { margin: .35rem 0 0; font-size: .85rem; color: var(--body-text-color-subdued); }
.tq-status-missing { color: var(--color-red-600, #b91c1c); font-weight: 600; }
#tq-examples { gap: .4rem !important; flex-wrap: wrap !important; }
#tq-examples button { flex: 0 1 auto !important; min-width: 0 !important; white-space: normal;
  font-weight: 400; border-radius: 999px; }
.tq-results, .tq-docs, .tq-report, .tq-upload, .tq-state { font-size: 1rem; line-height: 1.6;
  color: var(--body-text-color); }
.tq-summary { margin: .25rem 0 .75rem; color: var(--body-text-color-subdued); font-size: .9rem; }
.tq-summary q { color: var(--body-text-color); font-weight: 600; }
.tq-card { border: 1px solid var(--border-color-primary); border-radius: 12px;
  padding: 1rem 1.1rem .8rem; margin: 0 0 .9rem; background: var(--background-fill-primary);
  box-shadow: 0 1px 2px rgba(0,0,0,.04); }
.tq-card-head { display: flex; gap: .75rem; align-items: flex-start; }
.tq-rank { flex: none; width: 1.9rem; height: 1.9rem; border-radius: 999px; display: grid;
  place-items: center; font-weight: 700; font-size: .9rem; color: var(--button-primary-text-color);
  background: var(--button-primary-background-fill); }
.tq-cite { flex: 1 1 auto; min-width: 0; }
.tq-title { font-weight: 650; font-size: 1.02rem; overflow-wrap: anywhere; }
.tq-meta { font-size: .82rem; color: var(--body-text-color-subdued); overflow-wrap: anywhere; }
.tq-source { font-family: var(--font-mono); font-size: .85em; overflow-wrap: anywhere; }
.tq-scores { flex: none; display: flex; flex-direction: column; align-items: flex-end; gap: .15rem;
  font-size: .78rem; color: var(--body-text-color-subdued); font-variant-numeric: tabular-nums; }
.tq-meter { display: inline-block; width: 3.2rem; height: .4rem; border-radius: 99px;
  background: var(--border-color-primary); margin-right: .35rem; vertical-align: middle;
  overflow: hidden; }
.tq-meter > span { display: block; height: 100%; background: var(--color-accent); }
.tq-text { margin: .7rem 0 .4rem; white-space: pre-line; overflow-wrap: anywhere;
  font-size: 1rem; line-height: 1.65; }
.tq-best { background: color-mix(in srgb, var(--color-accent) 14%, transparent);
  border-radius: 3px; box-decoration-break: clone; -webkit-box-decoration-break: clone;
  padding: 0 .1em; }
mark.tq-term { background: color-mix(in srgb, #facc15 55%, transparent); color: inherit;
  border-radius: 2px; padding: 0 .05em; font-weight: 600; }
.tq-actions { display: flex; gap: .5rem; justify-content: flex-end; }
.tq-copy { font: inherit; font-size: .82rem; padding: .2rem .7rem; border-radius: 999px;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary);
  color: var(--body-text-color); cursor: pointer; }
.tq-copy:hover { border-color: var(--color-accent); }
.tq-copy.tq-copied { border-color: var(--color-accent); color: var(--color-accent); }
.tq-context { margin-top: .3rem; border-top: 1px dashed var(--border-color-primary);
  padding-top: .35rem; }
.tq-context summary { cursor: pointer; font-size: .85rem; color: var(--color-accent);
  width: fit-content; }
.tq-context-text { margin-top: .5rem; padding: .75rem .9rem; border-radius: 8px;
  background: var(--background-fill-secondary); white-space: pre-line; font-size: .92rem;
  max-height: 24rem; overflow: auto; overflow-wrap: anywhere; }
mark.tq-here { background: color-mix(in srgb, var(--color-accent) 18%, transparent);
  color: inherit; border-left: 3px solid var(--color-accent); padding-left: .25em; }
.tq-banner { border-radius: 10px; padding: .7rem .9rem; margin: 0 0 .9rem; font-size: .93rem; }
.tq-warn { background: color-mix(in srgb, #f59e0b 16%, transparent);
  border: 1px solid color-mix(in srgb, #f59e0b 55%, transparent); }
.tq-weak .tq-card { opacity: .85; }
.tq-state { display: flex; gap: .9rem; align-items: flex-start; padding: 1.1rem 1.2rem;
  border-radius: 12px; border: 1px dashed var(--border-color-primary);
  background: var(--background-fill-secondary); }
.tq-state-icon { flex: none; width: 2rem; height: 2rem; border-radius: 999px; display: grid;
  place-items: center; font-weight: 700; background: var(--background-fill-primary);
  border: 1px solid var(--border-color-primary); }
.tq-state-title { margin: 0; font-weight: 650; }
.tq-state-text { margin: .15rem 0 0; color: var(--body-text-color-subdued); }
.tq-state-error { border-style: solid; border-color: color-mix(in srgb, #dc2626 50%, transparent);
  background: color-mix(in srgb, #dc2626 8%, transparent); }
.tq-state-noindex { border-style: solid;
  border-color: color-mix(in srgb, #f59e0b 55%, transparent); }
.tq-docs-summary, .tq-muted { color: var(--body-text-color-subdued); font-size: .9rem; }
.tq-table { width: 100%; border-collapse: collapse; font-size: .9rem; }
.tq-table th { text-align: left; font-weight: 600; font-size: .8rem; text-transform: uppercase;
  letter-spacing: .04em; color: var(--body-text-color-subdued);
  border-bottom: 1px solid var(--border-color-primary); padding: .45rem .5rem; }
.tq-table td { border-bottom: 1px solid var(--border-color-primary); padding: .5rem;
  vertical-align: top; overflow-wrap: anywhere; }
.tq-num { text-align: right; font-variant-numeric: tabular-nums; }
.tq-when { white-space: nowrap; }
.tq-table { margin: 0; border: 0; }
.tq-table th, .tq-table td { border-left: 0; border-right: 0; border-top: 0; }
#tq-header { gap: .2rem !important; }
#tq-rebuild { width: auto; align-self: flex-start; }
.tq-kind, .tq-badge { display: inline-block; white-space: nowrap; padding: 0 .45rem;
  border-radius: 999px;
  font-size: .75rem; font-weight: 600; text-transform: uppercase; letter-spacing: .03em;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary); }
.tq-dup { font-size: .78rem; color: var(--body-text-color-subdued); }
.tq-chips { display: flex; flex-wrap: wrap; gap: .35rem; list-style: none; padding: 0;
  margin: .4rem 0 .7rem; }
.tq-chip { padding: .05rem .6rem; border-radius: 999px; font-size: .8rem;
  border: 1px solid var(--border-color-primary); }
.tq-added .tq-badge, .tq-chip.tq-added { border-color: #16a34a; color: #15803d; }
.tq-changed .tq-badge, .tq-chip.tq-changed { border-color: #2563eb; color: #1d4ed8; }
.tq-skipped .tq-badge, .tq-chip.tq-skipped, .tq-refused { color: #b45309; border-color: #d97706; }
.tq-removed .tq-badge, .tq-chip.tq-removed { border-color: #dc2626; color: #b91c1c; }
.dark .tq-added .tq-badge, .dark .tq-chip.tq-added { color: #4ade80; }
.dark .tq-changed .tq-badge, .dark .tq-chip.tq-changed { color: #93c5fd; }
.dark .tq-skipped .tq-badge, .dark .tq-chip.tq-skipped, .dark .tq-refused { color: #fbbf24; }
.dark .tq-removed .tq-badge, .dark .tq-chip.tq-removed { color: #fca5a5; }
.dark mark.tq-term { background: color-mix(in srgb, #facc15 35%, transparent); }
.tq-upload-list { padding-left: 1.1rem; }
.tq-upload-list li { margin: .15rem 0; }
.tq-ok::marker { color: #16a34a; }
.tq-h3 { margin: 1.2rem 0 .2rem; font-size: 1.1rem; font-weight: 650; }
#tq-upload-note { font-size: .9rem; color: var(--body-text-color-subdued); }
@media (max-width: 640px) {
  .gradio-container { padding: 0 .5rem !important; }
  #tq-header h1 { font-size: 1.3rem; }
  .tq-card { padding: .8rem .8rem .6rem; border-radius: 10px; }
  .tq-card-head { flex-wrap: wrap; gap: .6rem; }
  .tq-cite { flex: 1 1 0; }
  .tq-scores { flex-direction: row; gap: .6rem; width: 100%; justify-content: flex-start;
    padding-left: 2.65rem; }
  .tq-table thead { display: none; }
  .tq-table, .tq-table tbody, .tq-table tr, .tq-table td { display: block; width: 100%; }
  .tq-table tr { border: 1px solid var(--border-color-primary); border-radius: 10px;
    margin-bottom: .6rem; padding: .3rem .2rem; }
  .tq-table td { border: 0; padding: .15rem .5rem; text-align: left; }
  .tq-table td::before { content: attr(data-label); display: inline-block; min-width: 5.5rem;
    font-size: .75rem; text-transform: uppercase; letter-spacing: .04em;
    color: var(--body-text-color-subdued); }
}
"""
