"""The web UI's state and actions in one object, without Gradio (testable on its own).

:class:`WebApp` composes the serving state (:mod:`~tpd_qa.web.state`), the asking
(:mod:`~tpd_qa.web.asking`) and the corpus changes (:mod:`~tpd_qa.web.corpus`), and
renders the page's panels; :func:`tpd_qa.web.layout.build_ui` wires it into Gradio.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from tpd_qa.records import BuildReport, DocumentInfo
from tpd_qa.web import views
from tpd_qa.web.asking import EXAMPLE_QUESTIONS, Asker
from tpd_qa.web.corpus import CorpusEditor
from tpd_qa.web.document import open_document, parse_request
from tpd_qa.web.download import Downloads
from tpd_qa.web.state import Progress, ServingState

if TYPE_CHECKING:
    from tpd_qa.index import Index

__all__ = ["WebApp"]


class WebApp:
    """The web UI's state and actions; every page action returns HTML.

    Errors never escape as tracebacks: a :class:`~tpd_qa.errors.TpdQaError` becomes a
    friendly message, anything else a generic one (and a log entry with the details).
    """

    def __init__(
        self,
        corpus_dir: str | Path,
        index_dir: str | Path,
        *,
        allow_upload: bool = False,
        model: str | None = None,
    ) -> None:
        self._state = ServingState(corpus_dir, index_dir, model)
        self.corpus_dir: Path = self._state.corpus_dir
        self.index_dir: Path = self._state.index_dir
        self.model: str | None = self._state.model
        self._asker = Asker(self._state)
        #: Answer a question: ranked passage cards, or a state message (never raises).
        self.ask = self._asker.ask
        #: Passages as JSON-ready dicts (rank, citation, similarity...); raises TpdQaError.
        self.search = self._asker.search
        #: The answers to a question as a Markdown, CSV or JSON file (a link to each
        #: passage under ``base_url``); None when there is nothing to download.
        self.download = Downloads(self._asker).answers
        self._corpus = CorpusEditor(self._state, allow_upload=bool(allow_upload))
        #: What keeps the index current (``serve --watch``): a function giving its one
        #: line of state ("index updated 12 s ago · 2 added"); None when not watching.
        self.watch_status: Callable[[], str] | None = None

    @property
    def watching(self) -> bool:
        """Whether a watcher keeps the index current (the page then refreshes itself)."""
        return self.watch_status is not None

    # ------------------------------------------------------------------ index state

    @property
    def allow_upload(self) -> bool:
        return self._corpus.allow_upload

    @property
    def index(self) -> Index | None:
        """The index answering questions now (None until one could be loaded)."""
        return self._state.index

    def load(self) -> Index | None:
        """Load the index on disk and switch to it; on failure keep serving the old one."""
        return self._state.load()

    def ensure_index(self, echo: Callable[[str], None] | None = None) -> BuildReport | None:
        """Load the index, building it first if there is none or it is unusable."""
        return self._state.ensure_index(echo)

    def warm_up(self) -> None:
        """Answer one throw-away question so the first visitor does not wait for the model."""
        if self._state.index is not None:
            self.ask(EXAMPLE_QUESTIONS[0], 1)

    # ------------------------------------------------------------------ reading

    def documents(self) -> list[DocumentInfo] | None:
        """The indexed documents, or None when there is no index."""
        return self._state.documents()

    def status_html(self) -> str:
        """The one-line summary under the page title."""
        self._state.refresh()
        index = self._state.index
        live = self.watch_status() if self.watch_status is not None else ""
        if index is None:
            return views.render_status(None, live=live)
        return views.render_status(index.documents(), index.model_name, live=live)

    def documents_html(self) -> str:
        """The Documents panel's table."""
        if self._state.index is None and self._state.problem:
            return views.render_state("noindex", "No index yet", self._state.problem)
        return views.render_documents(self.documents())

    def welcome_html(self) -> str:
        """What the results area shows before the first question."""
        documents = self.documents()
        if documents is None:
            return views.render_state(
                "noindex",
                "No index yet",
                self._state.problem or "Open the Documents tab and rebuild the index.",
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

    # ------------------------------------------------------------------ documents

    def open_document(self, params: dict[str, Any] | str) -> str:
        """The document view for a link's query parameters (a dict, or the ``?doc=…``
        query string itself); "" when they name no document."""
        if isinstance(params, str):
            params = dict(parse_qsl(params.split("?", 1)[-1]))
        request = parse_request(params)
        if request is None:
            return ""
        index = self._state.index
        if index is None:
            return views.render_state("noindex", "No index yet", self._state.problem or "")
        stored = index.state.find(request.source)
        documents = {request.source: stored.document} if stored is not None else {}
        return open_document(self.corpus_dir, documents, request)

    # ------------------------------------------------------------------ changing

    def rebuild(self, on_progress: Progress | None = None) -> str:
        """Run the incremental rebuild (as ``tpd-qa index``), then switch to the new index."""
        return self._corpus.rebuild(on_progress)

    def upload(
        self,
        paths: Sequence[str | Path] | str | Path | None,
        on_progress: Progress | None = None,
    ) -> str:
        """Add uploaded files to the corpus and index them (only with ``allow_upload``)."""
        return self._corpus.upload(paths, on_progress)
