"""tpd_qa: ask questions of a document collection, get cited passages back.

>>> from tpd_qa import retrieve
>>> retrieve("Does the deal commit any money?", k=3)  # doctest: +SKIP
"""

from __future__ import annotations

import logging

from tpd_qa.api import (
    build_index,
    highlight_boxes,
    list_documents,
    load_index,
    render_page,
    retrieve,
)
from tpd_qa.errors import SourceError, TpdQaError
from tpd_qa.index import Index
from tpd_qa.pages import Box
from tpd_qa.records import BuildReport, Chunk, Document, DocumentInfo, Passage
from tpd_qa.version import __version__

__all__ = [
    "__version__",
    "retrieve",
    "build_index",
    "load_index",
    "list_documents",
    "render_page",
    "highlight_boxes",
    "Box",
    "Index",
    "Passage",
    "Document",
    "Chunk",
    "DocumentInfo",
    "BuildReport",
    "TpdQaError",
    "SourceError",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
