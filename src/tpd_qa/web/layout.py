"""The page, in Gradio: an Ask tab and a Documents tab wired to a :class:`WebApp`.

The only module that builds ``gr.Blocks``; Gradio is imported inside the functions, so
importing :mod:`tpd_qa.web` stays light (the CLI and the library never load it).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from tpd_qa.errors import TpdQaError
from tpd_qa.ingest import SUPPORTED_SUFFIXES
from tpd_qa.limits import DEFAULT_K, MAX_K, MAX_QUESTION_CHARS
from tpd_qa.modes import MODE_LABELS, MODES, Mode
from tpd_qa.uploads import UPLOAD_MAX_BYTES
from tpd_qa.web.app import WebApp
from tpd_qa.web.asking import EXAMPLE_QUESTIONS
from tpd_qa.web.download import DOWNLOAD_CHOICES, page_url
from tpd_qa.web.state import STAGE_NAMES
from tpd_qa.web.views import error_message

if TYPE_CHECKING:
    import gradio as gr

__all__ = ["MODE_CHOICES", "build_ui", "gradio_progress", "stylesheet", "theme"]

#: (label, value) of the retrieval modes offered; values are what Index.search takes.
MODE_CHOICES: Final[tuple[tuple[str, Mode], ...]] = tuple((MODE_LABELS[m], m) for m in MODES)

_COPY_JS = """
element.addEventListener('click', async (event) => {
  const button = event.target.closest('button.tq-copy, button.tq-copy-link');
  if (!button || !element.contains(button)) return;
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  let text = button.getAttribute('data-copy') || '';
  if (button.classList.contains('tq-copy-link')) {
    const url = new URL(text, window.location.href);
    url.hash = '';
    text = url.href;
  }
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
  setTimeout(() => { button.textContent = label; button.classList.remove('tq-copied'); },
             1800);
});
"""

# "Open in document" and the viewer's page/zoom buttons put their link into a hidden
# textbox, whose input event asks the server for the document view.
_OPEN_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('button.tq-open');
  if (!button || !element.contains(button) || button.disabled) return;
  const box = document.querySelector('#tq-open-request textarea, #tq-open-request input');
  if (!box) return;
  box.value = (button.getAttribute('data-link') || '') + '#' + Date.now();
  box.dispatchEvent(new Event('input', { bubbles: true }));
});
"""

# Scroll the passage (or its first highlight) into view whenever the viewer changes.
_VIEWER_JS = (
    _OPEN_JS
    + """
new MutationObserver(() => {
  const target = element.querySelector('#tq-passage, .tq-hl');
  if (target) target.scrollIntoView({ block: 'center', inline: 'nearest' });
}).observe(element, { childList: true, subtree: true });
"""
)

_HEADER = (
    "<h1>tpd-qa</h1><p class='tq-tagline'>Ask a question about your documents: "
    "the answer is the passages that say it, each with its citation.</p>"
)


def stylesheet() -> str:
    """The page's CSS (``style.css``, shipped inside the package)."""
    return resources.files("tpd_qa.web").joinpath("style.css").read_text("utf-8")


def theme() -> Any:
    """The Gradio theme the page is designed for."""
    import gradio as gr

    return gr.themes.Base(
        primary_hue="indigo",
        secondary_hue="slate",
        neutral_hue="slate",
        radius_size="md",
        font=(gr.themes.LocalFont("IBM Plex Sans"), "ui-sans-serif", "system-ui", "sans-serif"),
        font_mono=(gr.themes.LocalFont("IBM Plex Mono"), "ui-monospace", "monospace"),
    )


#: How often a page of a watched corpus refreshes its status and document list.
WATCH_REFRESH_SECONDS = 2.0


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
                        max_length=MAX_QUESTION_CHARS,
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
                with gr.Row(elem_id="tq-export", equal_height=False):
                    download_format = gr.Radio(
                        choices=list(DOWNLOAD_CHOICES),
                        value=DOWNLOAD_CHOICES[0][1],
                        show_label=False,
                        container=False,
                        scale=0,
                        elem_id="tq-download-format",
                    )
                    download = gr.DownloadButton(
                        f"Download {DOWNLOAD_CHOICES[0][0]}",
                        interactive=False,
                        size="sm",
                        scale=0,
                        elem_id="tq-download",
                    )
                results = html(
                    app.welcome_html(),
                    elem_id="tq-results",
                    js_on_load=_COPY_JS + _OPEN_JS,
                    min_height=80,
                )
                asked = gr.State(None)
                open_request = gr.Textbox(
                    show_label=False, container=False, elem_id="tq-open-request"
                )
                viewer = html(elem_id="tq-viewer", js_on_load=_VIEWER_JS)
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
                        file_types=sorted(SUPPORTED_SUFFIXES),
                        label=f"PDF, DOCX, HTML, Markdown or text · up to "
                        f"{UPLOAD_MAX_BYTES // (1024 * 1024)} MB each",
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

        def prepare_download(asking: Any, fmt: Any, request: Any) -> Any:
            """The download button holding the answers to ``asking`` (question, k, mode,
            sources) in format ``fmt``; disabled when there is nothing to download."""
            formats = {f: f for _label, f in DOWNLOAD_CHOICES}
            chosen = formats.get(fmt, DOWNLOAD_CHOICES[0][1])
            path = None
            if asking is not None:
                headers = dict(request.headers) if request is not None else {}
                text, count, how, only = asking
                path = app.download(text, count, how, only, chosen, base_url=page_url(headers))
            label = next(name for name, f in DOWNLOAD_CHOICES if f == chosen)
            return gr.DownloadButton(f"Download {label}", value=path, interactive=path is not None)

        def remember(
            text: str, count: float, how: str, only: list[str] | None, fmt: str, request: Any
        ) -> tuple[Any, Any]:
            asking = (text, count, how, only)
            return asking, prepare_download(asking, fmt, request)

        # Gradio passes the request to a parameter annotated gr.Request; annotations are
        # strings here (``from __future__``), so set the real class.
        for takes_request in (prepare_download, remember):
            takes_request.__annotations__["request"] = gr.Request
        # after every answer: keep the question and prepare its download
        remembering: dict[str, Any] = {
            "inputs": [question, k, mode, sources, download_format],
            "outputs": [asked, download],
            "api_visibility": "private",
            "show_progress": "hidden",
        }

        gr.on(
            triggers=[question.submit, ask_button.click],
            fn=do_ask,
            inputs=ask_inputs,
            outputs=results,
            api_name="ask",
            show_progress="minimal",
        ).then(remember, **remembering)
        download_format.change(
            prepare_download,
            inputs=[asked, download_format],
            outputs=download,
            api_visibility="private",
            show_progress="hidden",
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
            ).then(remember, **remembering)

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
                raise gr.Error(error_message(exc), print_exception=False) from None

        gr.api(search, api_name="search")  # type: ignore[attr-defined]

        def refresh(only: list[str] | None) -> tuple[str, str, Any]:
            choices = app.source_choices()
            present = {value for _label, value in choices}
            kept = [s for s in (only or []) if s in present]
            return app.status_html(), app.documents_html(), gr.Dropdown(choices=choices, value=kept)

        def do_rebuild(progress: Any = gr.Progress()) -> str:  # noqa: B008 (Gradio's idiom)
            return app.rebuild(gradio_progress(progress))

        def do_upload(paths: list[str] | None, progress: Any = gr.Progress()) -> str:  # noqa: B008
            return app.upload(paths, gradio_progress(progress))

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

        def do_open(link: str) -> str:
            return app.open_document(link.split("#", 1)[0])

        open_request.change(
            do_open,
            inputs=open_request,
            outputs=viewer,
            api_visibility="private",
            show_progress="minimal",
        )

        def open_linked(request: Any) -> str:
            params = dict(request.query_params) if request is not None else {}
            return app.open_document(params)

        open_linked.__annotations__["request"] = gr.Request  # as for prepare_download

        demo.load(
            refresh, inputs=sources, outputs=[status, documents, sources], api_visibility="private"
        )
        demo.load(open_linked, outputs=viewer, api_visibility="private")
        if app.watching:  # the watcher rebuilds on its own: show it without a click
            gr.Timer(WATCH_REFRESH_SECONDS).tick(
                refresh,
                inputs=sources,
                outputs=[status, documents, sources],
                api_visibility="private",
                show_progress="hidden",
            )
    return demo  # type: ignore[no-any-return]


def gradio_progress(progress: Any) -> Callable[[str, int, int], None]:
    """A build progress callback that moves a ``gr.Progress`` bar."""

    def report(stage: str, done: int, total: int) -> None:
        with contextlib.suppress(Exception):
            progress(
                (done, total),
                desc=STAGE_NAMES.get(stage, stage),
                unit={"scanning": "files", "ocr": "pages", "sentences": "sentences"}.get(
                    stage, "passages"
                ),
            )

    return report
