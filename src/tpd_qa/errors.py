"""Typed errors raised by tpd_qa. The CLI turns each into one line and an exit code.

A library message says what went wrong; what to do about it is a structured
:data:`Remedy` on the error, which each front end renders in its own words (the CLI
names a command, the web UI a button).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "Remedy",
    "TpdQaError",
    "IngestError",
    "IndexNotFoundError",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexLockedError",
    "QueryError",
    "ConfigError",
    "UploadError",
    "SourceError",
    "ClusterError",
]


#: What the user can do about an error:
#:
#: ``build``          there is no index yet: build one
#: ``rebuild``        the index was built with other settings: rebuild it with these
#: ``rebuild_full``   the index is damaged or unreadable: rebuild it from scratch
#: ``wait``           another rebuild holds the index: try again when it finishes
#: ``choose_index``   the index folder cannot be used: choose another one
#: ``choose_corpus``  the corpus folder cannot be used: choose another one
#: ``choose_reranker`` the configured cross-encoder cannot be used: choose another or none
Remedy = Literal[
    "build", "rebuild", "rebuild_full", "wait", "choose_index", "choose_corpus", "choose_reranker"
]


class TpdQaError(Exception):
    """Base class of every error tpd_qa raises on purpose.

    ``remedy`` (keyword only) says what would fix it; None when the message says it all.
    """

    def __init__(self, *args: object, remedy: Remedy | None = None) -> None:
        super().__init__(*args)
        self.remedy: Remedy | None = remedy


class IngestError(TpdQaError):
    """A file could not be turned into a document; ``reason`` says why in a few words."""

    def __init__(self, reason: str, path: str | None = None) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)


class IndexNotFoundError(TpdQaError):
    """No index exists where one was expected."""


class IndexCorruptError(TpdQaError):
    """The index on disk is incomplete or damaged."""


class IndexMismatchError(TpdQaError):
    """The index was built with another model, dimension or format version."""


class IndexLockedError(TpdQaError):
    """Another process is rebuilding the index."""


class QueryError(TpdQaError):
    """The question or search parameters are not usable."""


class ConfigError(TpdQaError):
    """A setting (model, directory, option) is invalid."""


class UploadError(TpdQaError):
    """An uploaded file was refused."""


class SourceError(TpdQaError):
    """The original of an indexed document cannot be shown.

    ``reason`` is ``missing`` (no such file, or not an indexed document), ``changed``
    (edited since it was indexed: highlighting it would mark the wrong text) or
    ``outside`` (the path leads out of the corpus folder).
    """

    def __init__(self, message: str, reason: Literal["missing", "changed", "outside"]) -> None:
        super().__init__(message)
        self.reason: Literal["missing", "changed", "outside"] = reason


class ClusterError(TpdQaError):
    """The cluster the work was sent to (Ray) could not be reached or failed the run."""
