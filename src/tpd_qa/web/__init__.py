"""The web UI: ask questions, read cited passages, manage the corpus (Gradio 6).

Modules, from the page down:

- :mod:`~tpd_qa.web.server`: ``serve()`` (address check, first build, launch).
- :mod:`~tpd_qa.web.layout`: the Gradio page (the only module building ``gr.Blocks``).
- :mod:`~tpd_qa.web.app`: :class:`WebApp`, every action without Gradio.
- :mod:`~tpd_qa.web.asking`: ``/ask`` and ``/search``, best sentences, context.
- :mod:`~tpd_qa.web.document`: "Open in document" (a PDF page or the text, highlighted).
- :mod:`~tpd_qa.web.download`: the answers as a Markdown, CSV or JSON file.
- :mod:`~tpd_qa.web.corpus`: rebuild and upload.
- :mod:`~tpd_qa.web.state`: the serving index and how it is swapped for a new one.
- :mod:`~tpd_qa.web.analysis`: question terms, sentences, weak matches (no HTML).
- :mod:`~tpd_qa.web.views`: HTML, escaped and bidi-isolated; ``style.css`` styles it.

Gradio is imported only when the page is built, so importing this package is light.
"""

from __future__ import annotations

from tpd_qa.limits import DEFAULT_K, MAX_K
from tpd_qa.web.app import WebApp
from tpd_qa.web.asking import EXAMPLE_QUESTIONS
from tpd_qa.web.layout import MODE_CHOICES, build_ui
from tpd_qa.web.server import SEARCH_CONCURRENCY, serve

__all__ = [
    "DEFAULT_K",
    "EXAMPLE_QUESTIONS",
    "MAX_K",
    "MODE_CHOICES",
    "SEARCH_CONCURRENCY",
    "WebApp",
    "build_ui",
    "serve",
]
