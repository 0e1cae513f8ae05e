"""The web UI: ask questions, read cited passages, manage the corpus (Gradio 6).

:class:`WebApp` holds the serving state and every action (search, rebuild, upload)
without touching Gradio, so it is testable on its own; :func:`build_ui` wires it into
``gr.Blocks``; :func:`serve` builds the index when there is none and runs the server.
This is the only module that imports Gradio, and it does so only inside those two.

Serving model: one :class:`~tpd_qa.index.Index` object answers every question. A
rebuild (or an external ``tpd-qa index``) writes a new generation on disk; the new index
is loaded next to the old one, which keeps answering until the new one replaces it in a
single assignment.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tpd_qa import api, uploads, views
from tpd_qa.errors import (
    ConfigError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    TpdQaError,
    UploadError,
)
from tpd_qa.records import BuildReport, DocumentInfo, Passage

if TYPE_CHECKING:
    import gradio as gr

    from tpd_qa.index import Index

__all__ = [
    "DEFAULT_K",
    "MAX_K",
    "MODE_CHOICES",
    "EXAMPLE_QUESTIONS",
    "SEARCH_CONCURRENCY",
    "WebApp",
    "build_ui",
    "serve",
]

log = logging.getLogger(__name__)

DEFAULT_K = 5
MAX_K = 20
#: (label, value) of the retrieval modes offered; values are what Index.search takes.
MODE_CHOICES: tuple[tuple[str, str], ...] = (
    ("Hybrid", "hybrid"),
    ("Semantic", "dense"),
    ("Keyword", "bm25"),
)
_MODE_ALIASES = {"semantic": "dense", "keyword": "bm25"}
EXAMPLE_QUESTIONS: tuple[str, ...] = (
    "Which facility will help commercialize fusion?",
    "Does the deal commit any money?",
    "Who signed the memorandum?",
    "What will the two countries do about submarine cables?",
    "How will they cooperate on quantum technology?",
)
#: Questions answered at once. Search holds a lock only around the model/index calls
#: (tens of milliseconds); the rest (context, highlighting, HTML) runs in parallel.
SEARCH_CONCURRENCY = 8
#: Requests allowed to wait in Gradio's queue before new ones are turned away.
QUEUE_SIZE = 256
#: Cards whose best sentence is chosen with the embedding model (the rest: by words).
SEMANTIC_HIGHLIGHT_CARDS = 5
#: Weight of word overlap next to cosine similarity when choosing a best sentence.
LEXICAL_SENTENCE_WEIGHT = 0.15
#: Least (cosine + weighted word overlap) for a sentence to be highlighted as an answer;
#: measured on corpus/: answering sentences score 0.38-0.81, unrelated ones 0.02-0.34.
SEMANTIC_SENTENCE_MIN = 0.35
#: Least share of the question's words a sentence needs when chosen by words alone.
LEXICAL_SENTENCE_MIN = 0.5
#: How long a rebuild waits for another process's rebuild to release the index lock.
REBUILD_LOCK_WAIT = 2.0
_SENTENCE_CACHE_SIZE = 4096
_STAGES = {"scanning": "Reading files", "embedding": "Embedding passages"}


class WebApp:
    """The web UI's state and actions; every public method returns HTML for the page.

    Errors never escape as tracebacks: a :class:`TpdQaError` becomes a friendly
    message, anything else a generic one (and a log entry with the details).
    """

    def __init__(
        self,
        corpus_dir: str | Path,
        index_dir: str | Path,
        *,
        allow_upload: bool = False,
        model: str | None = None,
    ) -> None:
        self.corpus_dir = Path(corpus_dir)
        self.index_dir = Path(index_dir)
        self.allow_upload = bool(allow_upload)
        self.model = model
        self._index: Index | None = None
        self._problem = ""
        self._stamp: tuple[int, int, int] | None = None
        self._reloading = False
        self._reload_guard = threading.Lock()
        self._model_lock = threading.Lock()
        self._corpus_lock = threading.Lock()
        self._sentences: OrderedDict[str, np.ndarray] = OrderedDict()
        self._sentence_lock = threading.Lock()

    # ------------------------------------------------------------------ index state

    @property
    def index(self) -> Index | None:
        """The index answering questions now (None until one could be loaded)."""
        return self._index

    def _manifest_stamp(self) -> tuple[int, int, int] | None:
        try:
            info = (self.index_dir / "manifest.json").stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def load(self) -> Index | None:
        """Load the index on disk and switch to it; on failure keep serving the old one."""
        stamp = self._manifest_stamp()
        try:
            index = api.load_index(self.index_dir, model=self.model)
        except TpdQaError as exc:
            log.warning("cannot load the index: %s", exc)
            self._problem = error_text(exc)
            self._stamp = stamp
            return self._index
        self._index, self._stamp, self._problem = index, stamp, ""
        return index

    def _refresh(self) -> None:
        """Pick up an index rebuilt behind our back (e.g. by ``tpd-qa index``).

        With an index already serving, the new one loads in a background thread and
        this request is answered by the old one; without one, it loads now.
        """
        stamp = self._manifest_stamp()
        if stamp is None or stamp == self._stamp:
            return
        if self._index is None:
            self.load()
            return
        with self._reload_guard:
            if self._reloading:
                return
            self._reloading = True
        threading.Thread(target=self._background_load, name="tpd-qa-reload", daemon=True).start()

    def _background_load(self) -> None:
        try:
            self.load()
        finally:
            with self._reload_guard:
                self._reloading = False

    def ensure_index(self, echo: Callable[[str], None] | None = None) -> BuildReport | None:
        """Load the index, building it first if there is none or it is unusable.

        ``echo`` receives progress lines (e.g. ``print``). Returns the build report,
        or None when an existing index was loaded as it was.
        """
        say = echo or (lambda _line: None)
        try:
            self._index = api.load_index(self.index_dir, model=self.model)
            self._stamp = self._manifest_stamp()
            return None
        except IndexNotFoundError:
            why = "no index yet"
        except (IndexCorruptError, IndexMismatchError) as exc:
            why = f"the index cannot be used: {exc}"
        say(f"Building the index of {self.corpus_dir} into {self.index_dir} ({why})…")
        report = api.build_index(
            self.corpus_dir,
            self.index_dir,
            model=self.model,
            on_progress=_ProgressPrinter(say),
            wait=REBUILD_LOCK_WAIT,
        )
        for outcome in report.skipped:
            say(f"  skipped {outcome.source}: {outcome.reason}")
        say(
            f"Indexed {report.documents} documents, {report.chunks} passages "
            f"in {report.seconds:.1f} s."
        )
        self.load()
        if self._index is None:
            raise ConfigError(self._problem or "the new index could not be loaded")
        return report

    def warm_up(self) -> None:
        """Answer one throw-away question so the first visitor does not wait for the model."""
        if self._index is not None:
            self.ask(EXAMPLE_QUESTIONS[0], 1)

    # ------------------------------------------------------------------ reading

    def documents(self) -> list[DocumentInfo] | None:
        """The indexed documents, or None when there is no index."""
        index = self._index
        return index.documents() if index is not None else None

    def status_html(self) -> str:
        """The one-line summary under the page title."""
        index = self._index
        if index is None:
            return views.render_status(None)
        return views.render_status(index.documents(), index.model_name)

    def documents_html(self) -> str:
        """The Documents panel's table."""
        if self._index is None and self._problem:
            return views.render_state("noindex", "No index yet", self._problem)
        return views.render_documents(self.documents())

    def welcome_html(self) -> str:
        """What the results area shows before the first question."""
        documents = self.documents()
        if documents is None:
            return views.render_state(
                "noindex",
                "No index yet",
                self._problem or "Open the Documents tab and rebuild the index.",
            )
        if not documents:
            return views.render_state(
                "noindex", "No documents indexed", "Add files to the corpus folder, then rebuild."
            )
        return views.render_state(
            "welcome",
            "Ask a question",
            f"Search {len(documents)} document{'s' if len(documents) != 1 else ''} "
            "and get the passages that answer it, each with its citation.",
        )

    def source_choices(self) -> list[tuple[str, str]]:
        """(label, source) pairs for the document filter."""
        documents = self.documents() or []
        titles = [d.title.strip() or d.source for d in documents]
        return [
            (title if titles.count(title) == 1 else f"{title} ({doc.source})", doc.source)
            for title, doc in zip(titles, documents, strict=True)
        ]

    # ------------------------------------------------------------------ asking

    def ask(
        self,
        question: str | None,
        k: float | int | None = DEFAULT_K,
        mode: str | None = "hybrid",
        sources: Sequence[str] | str | None = None,
    ) -> str:
        """Answer ``question``: ranked passage cards, or a state message."""
        try:
            return self._ask(question or "", k, mode or "hybrid", sources)
        except TpdQaError as exc:
            return views.render_state("error", "The search could not run", error_text(exc))
        except Exception:
            log.exception("search failed")
            return views.render_state(
                "error",
                "Something went wrong",
                "The search failed unexpectedly; the details are in the server log.",
            )

    def _ask(
        self, question: str, k: float | int | None, mode: str, sources: Sequence[str] | str | None
    ) -> str:
        # The search reads only the first api.MAX_QUESTION_CHARS; so do the highlighting
        # helpers, whose cost grows with the number of distinct words (a 1 MB question
        # posted to /ask took over a minute).
        question = question.strip()[: api.MAX_QUESTION_CHARS]
        if not question:
            return views.render_state(
                "hint", "Type a question first", f"For example: {EXAMPLE_QUESTIONS[0]}"
            )
        self._refresh()
        index = self._index
        if index is None:
            return views.render_state(
                "noindex",
                "No index yet",
                self._problem or "Open the Documents tab and rebuild the index.",
            )
        if index.chunk_count == 0:
            return views.render_state(
                "noindex", "No documents indexed", "Add files to the corpus folder, then rebuild."
            )
        count = _clamp_k(k)
        canonical = _MODE_ALIASES.get(mode.strip().lower(), mode.strip().lower())
        if isinstance(sources, str):
            sources = [sources]
        selected = [s for s in (sources or []) if s]
        started = time.perf_counter()
        with self._model_lock:
            passages = index.search(question, count, mode=canonical, sources=selected or None)
            similarities = index.similarity(question, passages) if passages else []
            semantic = self._sentence_similarities(
                index, question, passages[:SEMANTIC_HIGHLIGHT_CARDS]
            )
        terms = views.query_terms(question)
        coverage = views.term_coverage(terms, (p.text for p in passages))
        weak = views.is_weak(max(similarities) if similarities else None, coverage)
        cards = tuple(
            self._card(index, passage, similarity, terms, semantic.get(rank), weak)
            for rank, (passage, similarity) in enumerate(
                zip(passages, similarities or [None] * len(passages), strict=True)
            )
        )
        answer = views.Answer(
            question=question,
            mode=canonical,
            cards=cards,
            terms=terms,
            weak=weak,
            filtered=len(selected),
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )
        return views.render_answer(answer)

    def search(
        self,
        question: str,
        k: float | int | None = DEFAULT_K,
        mode: str = "hybrid",
        sources: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Passages as JSON-ready dicts (rank, citation, similarity...); raises TpdQaError."""
        self._refresh()
        index = self._index
        if index is None:
            raise IndexNotFoundError(self._problem or f"no index in {self.index_dir}")
        canonical = _MODE_ALIASES.get(mode.strip().lower(), mode.strip().lower())
        with self._model_lock:
            passages = index.search(
                question, _clamp_k(k), mode=canonical, sources=list(sources or []) or None
            )
            similarities = index.similarity(question, passages) if passages else []
        return [
            {"rank": rank, **p.to_dict(), "similarity": round(sim, 4)}
            for rank, (p, sim) in enumerate(zip(passages, similarities, strict=True), start=1)
        ]

    def _card(
        self,
        index: Index,
        passage: Passage,
        similarity: float | None,
        terms: tuple[str, ...],
        semantic: list[float] | None,
        weak: bool,
    ) -> views.Card:
        spans = views.sentence_spans(passage.text)
        best: tuple[tuple[int, int], ...] = ()
        if not weak:
            scores = views.lexical_sentence_scores(passage.text, spans, terms)
            minimum = LEXICAL_SENTENCE_MIN
            if semantic is not None and len(semantic) == len(scores):
                scores = [
                    s + LEXICAL_SENTENCE_WEIGHT * w for s, w in zip(semantic, scores, strict=True)
                ]
                minimum = SEMANTIC_SENTENCE_MIN
            best = tuple(spans[i] for i in views.best_sentences(scores, minimum=minimum))
        before = after = ""
        more_before = more_after = False
        with contextlib.suppress(TpdQaError):
            text = index.document(passage.source).text
            if text[passage.start : passage.end] == passage.text:
                before, after, more_before, more_after = views.context_window(
                    text, passage.start, passage.end
                )
        return views.Card(passage, similarity, best, before, after, more_before, more_after)

    def _sentence_similarities(
        self, index: Index, question: str, passages: Sequence[Passage]
    ) -> dict[int, list[float]]:
        """Cosine of each sentence of each passage to the question (cached per sentence)."""
        if not passages:
            return {}
        per_passage = [[p.text[a:b] for a, b in views.sentence_spans(p.text)] for p in passages]
        with self._sentence_lock:
            missing = sorted(
                {s for group in per_passage for s in group if s not in self._sentences}
            )
        embedder = index.embedder
        vectors = embedder.embed_batch([question, *missing])
        query = vectors[0]
        with self._sentence_lock:
            for sentence, vector in zip(missing, vectors[1:], strict=True):
                self._sentences[sentence] = vector
            while len(self._sentences) > _SENTENCE_CACHE_SIZE:
                self._sentences.popitem(last=False)
            found = {s: self._sentences.get(s) for group in per_passage for s in group}
        result: dict[int, list[float]] = {}
        for rank, group in enumerate(per_passage):
            scores = []
            for sentence in group:
                vector = found.get(sentence)
                ok = vector is not None and vector.shape == query.shape
                scores.append(float(vector @ query) if ok else 0.0)
            result[rank] = scores
        return result

    # ------------------------------------------------------------------ changing

    def rebuild(self, on_progress: Callable[[str, int, int], None] | None = None) -> str:
        """Run the incremental rebuild (as ``tpd-qa index``), then switch to the new index."""
        with self._corpus_lock:
            try:
                report = self._build(on_progress)
            except TpdQaError as exc:
                return views.render_state("error", "The rebuild failed", error_text(exc))
            except Exception:
                log.exception("rebuild failed")
                return views.render_state(
                    "error", "The rebuild failed", "Unexpected error; details are in the log."
                )
            self.load()
            return views.render_report(report)

    def _build(self, on_progress: Callable[[str, int, int], None] | None) -> BuildReport:
        return api.build_index(
            self.corpus_dir,
            self.index_dir,
            model=self.model,
            on_progress=on_progress,
            wait=REBUILD_LOCK_WAIT,
        )

    def upload(
        self,
        paths: Sequence[str | Path] | str | None,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> str:
        """Add uploaded files to the corpus and index them (only with ``allow_upload``)."""
        if not self.allow_upload:
            return views.render_state(
                "error",
                "Uploads are disabled",
                "This server was started without --allow-upload; no file was stored.",
            )
        if isinstance(paths, (str, Path)):
            paths = [paths]
        files = [Path(p) for p in (paths or []) if p]
        if not files:
            return views.render_state("hint", "Choose files first", _UPLOAD_HINT)
        if len(files) > uploads.MAX_FILES_PER_UPLOAD:
            return views.render_state(
                "error",
                "Too many files",
                f"Upload at most {uploads.MAX_FILES_PER_UPLOAD} files at a time.",
            )
        with self._corpus_lock:
            index = self._index
            known = {d.sha256: d.source for d in index.documents()} if index else {}
            accepted: list[tuple[str, str]] = []
            refused: list[tuple[str, str]] = []
            for path in files:
                try:
                    data = uploads.read_upload(path)
                    stored = uploads.store_upload(self.corpus_dir, path.name, data, known=known)
                except UploadError as exc:
                    refused.append((path.name, str(exc)))
                    continue
                known[stored.sha256] = stored.name
                accepted.append((path.name, stored.name))
            report = None
            if accepted:
                try:
                    report = self._build(on_progress)
                except TpdQaError as exc:
                    refused.append(
                        ("(indexing)", f"stored, but the rebuild failed: {error_text(exc)}")
                    )
                self.load()
            return views.render_upload(accepted, refused, report)


def error_text(exc: TpdQaError) -> str:
    """The error as the web UI shows it: the message, then its remedy in the UI's terms."""
    rebuild = ": use Rebuild index on the Documents tab"
    remedies = {
        "build": rebuild,
        "rebuild": f"{rebuild} to rebuild it for this model",
        "rebuild_full": rebuild,  # the web rebuild starts afresh from an unusable index
        "wait": "; try again when it finishes",
        "choose_index": "; restart the server with another --index",
        "choose_corpus": "; restart the server with another --corpus",
    }
    return f"{exc}{remedies.get(exc.remedy or '', '')}"


_UPLOAD_HINT = "Supported: " + ", ".join(sorted(s[1:].upper() for s in uploads.SUPPORTED_SUFFIXES))


def _clamp_k(k: float | int | None) -> int:
    try:
        value = int(k) if k is not None else DEFAULT_K
    except (TypeError, ValueError):
        value = DEFAULT_K
    return max(1, min(MAX_K, value))


class _ProgressPrinter:
    """Turns build progress callbacks into a few printed lines (each stage, every 25%)."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo
        self._last: tuple[str, int] = ("", -1)

    def __call__(self, stage: str, done: int, total: int) -> None:
        quarter = (4 * done) // total if total else 4
        if (stage, quarter) != self._last:
            self._last = (stage, quarter)
            self._echo(f"  {_STAGES.get(stage, stage)}: {done}/{total}")


# ---------------------------------------------------------------------------- Gradio

_COPY_JS = """
element.addEventListener('click', async (event) => {
  const button = event.target.closest('button.tq-copy');
  if (!button || !element.contains(button)) return;
  const text = button.getAttribute('data-copy') || '';
  let copied = false;
  try {
    await navigator.clipboard.writeText(text);
    copied = true;
  } catch (error) {
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.appendChild(area);
    area.select();
    try { copied = document.execCommand('copy'); } catch (ignored) { copied = false; }
    area.remove();
  }
  button.textContent = copied ? 'Copied ✓' : 'Press Ctrl+C to copy';
  button.classList.toggle('tq-copied', copied);
  setTimeout(() => { button.textContent = 'Copy citation'; button.classList.remove('tq-copied'); },
             1800);
});
"""

_HEADER = (
    "<h1>tpd-qa</h1><p class='tq-tagline'>Ask a question about your documents: "
    "the answer is the passages that say it, each with its citation.</p>"
)


def _theme() -> Any:
    import gradio as gr

    return gr.themes.Base(
        primary_hue="indigo",
        secondary_hue="slate",
        neutral_hue="slate",
        radius_size="md",
        font=(gr.themes.LocalFont("IBM Plex Sans"), "ui-sans-serif", "system-ui", "sans-serif"),
        font_mono=(gr.themes.LocalFont("IBM Plex Mono"), "ui-monospace", "monospace"),
    )


def build_ui(app: WebApp) -> gr.Blocks:
    """The page: an Ask tab (question, options, answer cards) and a Documents tab."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    def html(value: str = "", **kwargs: Any) -> gr.HTML:
        kwargs.setdefault("js_on_load", None)
        return gr.HTML(value, apply_default_css=False, **kwargs)

    with gr.Blocks(title="tpd-qa · ask your documents", analytics_enabled=False) as demo:
        with gr.Column(elem_id="tq-header"):
            html(_HEADER)
            status = html(app.status_html(), elem_id="tq-status")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask", elem_id="tq-tab-ask"):
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        label="Question",
                        show_label=False,
                        placeholder="Ask a question about the documents…  (Enter to search)",
                        scale=6,
                        autofocus=True,
                        max_length=4000,
                        elem_id="tq-question",
                    )
                    ask_button = gr.Button(
                        "Ask", variant="primary", scale=1, min_width=96, elem_id="tq-ask"
                    )
                with gr.Row(elem_id="tq-examples"):
                    example_buttons = [
                        gr.Button(text, size="sm", variant="secondary", elem_classes="tq-example")
                        for text in EXAMPLE_QUESTIONS
                    ]
                with gr.Row():
                    k = gr.Slider(
                        1, MAX_K, value=DEFAULT_K, step=1, label="Passages", elem_id="tq-k"
                    )
                    mode = gr.Radio(
                        choices=list(MODE_CHOICES),
                        value="hybrid",
                        label="Search by",
                        info="Hybrid = meaning + exact words",
                        elem_id="tq-mode",
                    )
                    sources = gr.Dropdown(
                        choices=app.source_choices(),
                        value=[],
                        multiselect=True,
                        allow_custom_value=True,  # choices change with every rebuild
                        label="Only in these documents",
                        info="Empty: search all documents",
                        elem_id="tq-sources",
                    )
                results = html(
                    app.welcome_html(), elem_id="tq-results", js_on_load=_COPY_JS, min_height=80
                )
            with gr.Tab("Documents", id="documents", elem_id="tq-tab-documents"):
                documents = html(app.documents_html(), elem_id="tq-documents")
                with gr.Row():
                    rebuild_button = gr.Button(
                        "Rebuild index", variant="primary", elem_id="tq-rebuild", scale=0
                    )
                    html(
                        "<p class='tq-muted'>Re-reads the corpus folder: new and changed files "
                        "are indexed, removed ones dropped. Searching continues meanwhile.</p>"
                    )
                report = html(elem_id="tq-report")
                html("<h3 class='tq-h3'>Add documents</h3>")
                if app.allow_upload:
                    files = gr.File(
                        file_count="multiple",
                        file_types=sorted(uploads.SUPPORTED_SUFFIXES),
                        label=f"PDF, DOCX, HTML, Markdown or text · up to "
                        f"{uploads.UPLOAD_MAX_BYTES // (1024 * 1024)} MB each",
                        elem_id="tq-upload",
                    )
                else:
                    html(
                        "<p id='tq-upload-note'>Uploading is off. Start the server with "
                        "<code>--allow-upload</code> to add documents from the browser, or copy "
                        "files into the corpus folder and rebuild.</p>"
                    )
                    files = gr.File(
                        file_count="multiple",
                        interactive=False,
                        visible=False,
                        label="Uploads disabled",
                        elem_id="tq-upload",
                    )
                add_button = gr.Button(
                    "Add to corpus and index",
                    interactive=app.allow_upload,
                    visible=app.allow_upload,
                    elem_id="tq-add",
                )
                upload_result = html(elem_id="tq-upload-result")

        ask_inputs = [question, k, mode, sources]

        def do_ask(text: str, count: float, how: str, only: list[str] | None) -> str:
            return app.ask(text, count, how, only)

        gr.on(
            triggers=[question.submit, ask_button.click],
            fn=do_ask,
            inputs=ask_inputs,
            outputs=results,
            api_name="ask",
            show_progress="minimal",
        )
        for button, text in zip(example_buttons, EXAMPLE_QUESTIONS, strict=True):

            def run_example(
                count: float, how: str, only: list[str] | None, text: str = text
            ) -> tuple[str, str]:
                return text, app.ask(text, count, how, only)

            button.click(
                run_example,
                inputs=[k, mode, sources],
                outputs=[question, results],
                api_visibility="private",
                show_progress="minimal",
            )

        def search(
            question: str,
            k: int = DEFAULT_K,
            mode: str = "hybrid",
            sources: list[str] | None = None,
        ) -> list[dict[str, Any]]:
            """Passages for ``question`` as JSON (for scripts; the page uses /ask)."""
            try:
                return app.search(question, k, mode, sources)
            except TpdQaError as exc:
                raise gr.Error(error_text(exc), print_exception=False) from None

        gr.api(search, api_name="search")

        def refresh(only: list[str] | None) -> tuple[str, str, Any]:
            choices = app.source_choices()
            present = {value for _label, value in choices}
            kept = [s for s in (only or []) if s in present]
            return app.status_html(), app.documents_html(), gr.Dropdown(choices=choices, value=kept)

        def do_rebuild(progress: Any = gr.Progress()) -> str:  # noqa: B008 (Gradio's idiom)
            return app.rebuild(_gradio_progress(progress))

        def do_upload(paths: list[str] | None, progress: Any = gr.Progress()) -> str:  # noqa: B008
            return app.upload(paths, _gradio_progress(progress))

        rebuild_button.click(
            do_rebuild,
            outputs=report,
            api_name="rebuild",
            concurrency_limit=1,
            concurrency_id="corpus",
        ).then(
            refresh, inputs=sources, outputs=[status, documents, sources], api_visibility="private"
        )
        add_button.click(
            do_upload,
            inputs=files,
            outputs=upload_result,
            api_name="upload",
            concurrency_limit=1,
            concurrency_id="corpus",
        ).then(
            lambda only: (*refresh(only), None),
            inputs=sources,
            outputs=[status, documents, sources, files],
            api_visibility="private",
        )
        demo.load(
            refresh, inputs=sources, outputs=[status, documents, sources], api_visibility="private"
        )
    return demo


def _gradio_progress(progress: Any) -> Callable[[str, int, int], None]:
    def report(stage: str, done: int, total: int) -> None:
        with contextlib.suppress(Exception):
            progress(
                (done, total),
                desc=_STAGES.get(stage, stage),
                unit="files" if stage == "scanning" else "passages",
            )

    return report


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _check_port(host: str, port: int) -> None:
    """Fail early (before any indexing) when ``host:port`` cannot be listened on."""
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not a valid port number (1-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"cannot resolve host {host!r}: {exc}") from exc
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"fails ({exc})"
            raise ConfigError(
                f"listening on {host}:{port} {reason}: choose another with --port"
            ) from exc


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    *,
    corpus_dir: str | Path,
    index_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    allow_upload: bool = False,
) -> None:
    """Serve the web UI until interrupted; builds the index first when there is none."""

    def echo(line: str) -> None:
        print(line, flush=True)

    _check_port(host, port)
    app = WebApp(corpus_dir, index_dir, allow_upload=allow_upload, model=api.configured_model())
    app.ensure_index(echo)
    app.warm_up()
    demo = build_ui(app)
    demo.queue(default_concurrency_limit=SEARCH_CONCURRENCY, max_size=QUEUE_SIZE)
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            prevent_thread_lock=True,
            quiet=True,
            show_error=False,
            ssr_mode=False,
            inbrowser=False,
            share=False,
            theme=_theme(),
            css=views.CSS,
            max_file_size=uploads.UPLOAD_MAX_BYTES if allow_upload else 1024,
            footer_links=["api"],
        )
    except OSError as exc:
        raise ConfigError(f"cannot serve on {host}:{port}: {exc}") from exc
    shown = f"[{host}]" if ":" in host else host
    echo(f"tpd-qa: serving http://{shown}:{port}/  (Ctrl+C to stop)")
    if _is_loopback(host):
        echo("tpd-qa: bound to loopback only; use --host 0.0.0.0 to serve other machines")
    else:
        echo(f"tpd-qa: warning: listening on {host}, reachable from other machines")
    echo(f"tpd-qa: uploads are {'ON' if allow_upload else 'off (use --allow-upload)'}")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops as cleanly as Ctrl+C
    try:
        demo.block_thread()
    finally:
        with contextlib.suppress(Exception):
            demo.close()
        sys.stdout.flush()
