"""Typed errors raised by tpd_qa. The CLI turns each into one line and an exit code."""

from __future__ import annotations

__all__ = [
    "TpdQaError",
    "IngestError",
    "IndexNotFoundError",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexLockedError",
    "QueryError",
    "ConfigError",
    "UploadError",
]


class TpdQaError(Exception):
    """Base class of every error tpd_qa raises on purpose."""


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
