"""A validated search request: one place that cleans questions and checks k, mode, sources.

Every way in (``retrieve``, ``Index.search``, the CLI, the web endpoints) builds a
:class:`Query`, so the same bad input gets the same one-line message everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tpd_qa.errors import QueryError
from tpd_qa.limits import MAX_QUESTION_CHARS
from tpd_qa.modes import Mode, normalise_mode

__all__ = ["Query", "check_k", "clean_question"]


@dataclass(frozen=True, slots=True)
class Query:
    """A question with its search options, validated."""

    question: str
    k: int
    mode: Mode
    sources: tuple[str, ...] | None

    @classmethod
    def parse(
        cls,
        question: object,
        k: object = 5,
        mode: object = "hybrid",
        sources: Iterable[str] | str | None = None,
        *,
        k_limit: int | None = None,
    ) -> Query:
        """Validate every part; raises QueryError with one clear sentence on bad input.

        ``sources=None`` searches everything; a list limits the search to those
        documents (an empty list matches nothing).
        """
        if isinstance(sources, str):
            sources = [sources]
        chosen = None if sources is None else tuple(str(source) for source in sources)
        return cls(
            clean_question(question), check_k(k, limit=k_limit), normalise_mode(mode), chosen
        )


def clean_question(question: object) -> str:
    """The question as text that is safe to embed, tokenize and show.

    Control characters and lone surrogates (which no encoder accepts) become spaces;
    the result is trimmed and cut to ``MAX_QUESTION_CHARS``.
    """
    if not isinstance(question, str):
        raise QueryError("the question must be text")
    cleaned = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in question).strip()
    if not cleaned:
        raise QueryError("the question is empty: type a question")
    return cleaned[:MAX_QUESTION_CHARS]


def check_k(k: object, *, limit: int | None = None) -> int:
    """``k`` as a whole number of at least 1 (and at most ``limit``, when given).

    Whole floats (``5.0``, as sliders send) and digit strings are accepted; anything
    else, zero, negatives and numbers over the limit are refused, never adjusted.
    """
    number: int | None = None
    if isinstance(k, int) and not isinstance(k, bool):
        number = k
    elif isinstance(k, float) and k.is_integer():
        number = int(k)
    elif isinstance(k, str) and k.strip().isdigit():
        number = int(k.strip())
    bound = f"from 1 to {limit}" if limit is not None else "of at least 1"
    if number is None or number < 1 or (limit is not None and number > limit):
        raise QueryError(f"k must be a whole number {bound}, got {k!r}")
    return number
