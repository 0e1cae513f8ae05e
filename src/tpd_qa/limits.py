"""Limits that protect the tool and its users; each lives here and only here."""

from __future__ import annotations

from typing import Final

#: Longest question accepted (characters); longer ones are cut, not refused.
MAX_QUESTION_CHARS: Final = 4000
#: Passages returned by default, and the most one request may ask for.
DEFAULT_K: Final = 5
MAX_K: Final = 20
#: Largest file accepted by upload (bytes).
MAX_UPLOAD_BYTES: Final = 25 * 1024 * 1024
