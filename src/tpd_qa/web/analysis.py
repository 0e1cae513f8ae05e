"""Text analysis behind the answer view: question terms, weak matches, context.

Words are compared the way the keyword index compares them (:func:`tpd_qa.sparse.keywords`:
BM25's tokens, stop words and English stemmer), so a highlighted word is one that BM25
counts as a match. The answer sentence is the index's own (``Passage.answer_start``), the
same as the CLI and JSON show. Pure functions, no HTML.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from tpd_qa.sparse import keywords

__all__ = [
    "CONTEXT_CHARS",
    "LOW_CONFIDENCE_COSINE",
    "MIN_COSINE_WITH_KEYWORDS",
    "MIN_TERM_COVERAGE",
    "context_window",
    "is_weak",
    "query_terms",
    "term_coverage",
    "term_matches",
    "term_spans",
]

#: Cosine (question vs. best passage, all-MiniLM-L6-v2) below which a match is weak.
#: Measured on corpus/: on-topic questions score 0.29-0.65, off-topic ones -0.08-0.23.
LOW_CONFIDENCE_COSINE: Final = 0.25
#: Below this cosine a result is weak even when the question's words occur in it.
MIN_COSINE_WITH_KEYWORDS: Final = 0.10
#: Share of the question's terms that must occur in the passages to rescue a cosine
#: between the two thresholds above (e.g. "What is Open RAN?" scores 0.12).
MIN_TERM_COVERAGE: Final = 0.5
#: Characters of surrounding text shown on each side by "show in context".
CONTEXT_CHARS: Final = 700


def _keys(terms: Iterable[str]) -> set[str]:
    return {key for term in terms for _start, _end, key in keywords(term)}


def query_terms(question: str) -> tuple[str, ...]:
    """The words of a question that keyword search looks for, lower-cased.

    Stop words are dropped and words sharing a stem count once (the first one is kept).
    """
    terms: list[str] = []
    seen: set[str] = set()
    for start, end, key in keywords(question):
        if key not in seen:
            seen.add(key)
            terms.append(question[start:end].lower())
    return tuple(terms)


def term_matches(word: str, term: str) -> bool:
    """Whether a word of the text counts as an occurrence of a question term (same stem)."""
    found = keywords(word)
    return len(found) == 1 and found[0][2] in _keys([term])


def term_spans(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans of the words in ``text`` that match any of ``terms``."""
    wanted = _keys(terms)
    if not wanted:
        return []
    return [(start, end) for start, end, key in keywords(text) if key in wanted]


def term_coverage(terms: Sequence[str], texts: Iterable[str]) -> float:
    """Share of ``terms`` that occur (as words) anywhere in ``texts`` (0..1; 0 if no terms)."""
    wanted = [_keys([term]) for term in terms]
    wanted = [keys for keys in wanted if keys]
    if not wanted:
        return 0.0
    present = {key for text in texts for _start, _end, key in keywords(text)}
    return sum(1 for keys in wanted if keys & present) / len(wanted)


def is_weak(best_similarity: float | None, coverage: float) -> bool:
    """Whether the best result is a weak match for the question.

    Strong semantic similarity is enough; a middling one counts when most of the
    question's words occur in the passages; ``None`` (no similarity) never flags.
    """
    if best_similarity is None:
        return False
    if best_similarity >= LOW_CONFIDENCE_COSINE:
        return False
    return best_similarity < MIN_COSINE_WITH_KEYWORDS or coverage < MIN_TERM_COVERAGE


def context_window(
    text: str, start: int, end: int, chars: int = CONTEXT_CHARS
) -> tuple[str, str, bool, bool]:
    """Text around ``text[start:end]``: (before, after, more before?, more after?).

    The window is widened to word boundaries, and to a line break when one is near.
    """
    low = max(0, start - chars)
    high = min(len(text), end + chars)
    if low > 0:
        newline = text.find("\n", low, start)
        if newline != -1 and newline - low < chars // 3:
            low = newline + 1
        else:
            space = text.find(" ", low, start)
            low = space + 1 if space != -1 else low
    if high < len(text):
        newline = text.rfind("\n", end, high)
        if newline != -1 and high - newline < chars // 3:
            high = newline
        else:
            space = text.rfind(" ", end, high)
            high = space if space != -1 else high
    return text[low:start], text[end:high], low > 0, high < len(text)
