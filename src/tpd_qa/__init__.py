"""tpd_qa: ask questions of a document collection, get cited passages back."""

from __future__ import annotations

__version__ = "0.1.0"
