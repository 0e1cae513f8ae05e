"""Structure-aware chunking: documents become token-limited spans that cite well.

Passages follow the text's own units. Blocks are headings, list items and paragraphs; a
block that fits the token limit is never cut, and short blocks are packed together up to
the target size. A longer block is cut at sentences into pieces of about equal size, and
only such pieces may overlap (``overlap_sentences``); a sentence is cut (at word
boundaries) only when it alone exceeds the limit. Every chunk satisfies
``document.text[chunk.start:chunk.end] == chunk.text``.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from tpd_qa.records import Chunk, Document, Heading
from tpd_qa.text import estimate_tokens, line_starts, list_marker, sentence_spans

__all__ = ["Chunker", "ChunkerSettings", "word_count_tokens"]

TokenCounter = Callable[[str], int]

# A line ending like this closes its paragraph: the next line starts a new block.
_CLAUSE_END = re.compile(r"[.!?。！？;:][\"'”’)\]]*[ \t]*$")
_WORD = re.compile(r"\S+")

#: The default token counter: :func:`tpd_qa.text.estimate_tokens` (words and CJK characters).
word_count_tokens: TokenCounter = estimate_tokens


@dataclass(frozen=True, slots=True)
class ChunkerSettings:
    """Chunk sizes in model tokens; ``max_tokens`` is a hard limit, the others soft.

    ``algorithm`` names the boundary rules; bumping it makes old indexes re-chunk
    (5: passages follow the text's own units: a paragraph or list item that fits
    ``max_tokens`` stays whole, short ones are packed together up to ``pack_tokens`` (at
    most ``target_tokens``), a longer one is cut at sentences into pieces of about
    ``target_tokens``, and only those pieces overlap, by ``overlap_sentences``; 6: a
    full stop after a title or an initial before a name ends no sentence, so no cut
    falls there). Sentences are :func:`tpd_qa.text.sentence_spans`; the default counter
    counts one token per CJK character.
    """

    algorithm: int = 6
    max_tokens: int = 220
    target_tokens: int = 160
    pack_tokens: int = 100
    min_chars: int = 200
    overlap_sentences: int = 0

    def __post_init__(self) -> None:
        if not 8 <= self.target_tokens <= self.max_tokens:
            raise ValueError("need 8 <= target_tokens <= max_tokens")
        if self.pack_tokens < 8:
            raise ValueError("need pack_tokens >= 8")
        if self.min_chars < 0 or self.overlap_sentences < 0:
            raise ValueError("min_chars and overlap_sentences must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Unit:
    """A whole block, or one piece of a block that had to be split at sentences."""

    start: int
    end: int
    tokens: int
    block: int
    split: bool


@dataclass(frozen=True, slots=True)
class _Block:
    start: int
    end: int
    is_heading: bool
    item: str | None


class Chunker:
    """Splits documents into chunks no longer than ``settings.max_tokens`` tokens."""

    def __init__(
        self, settings: ChunkerSettings | None = None, count_tokens: TokenCounter | None = None
    ) -> None:
        self.settings = settings or ChunkerSettings()
        self.count_tokens = count_tokens or word_count_tokens

    def chunk(self, document: Document) -> list[Chunk]:
        """All chunks of ``document`` in text order."""
        text = document.text
        blocks = _blocks(text, document.headings)
        units = list(self._units(text, blocks))
        chunks: list[Chunk] = []
        for first, last in self._pack(document, units, blocks):
            start, end = units[first].start, units[last].end
            for piece_start, piece_end in self._enforce_limit(text, start, end):
                chunks.append(
                    Chunk(
                        doc_id=document.sha256,
                        start=piece_start,
                        end=piece_end,
                        text=text[piece_start:piece_end],
                        page=document.page_at(piece_start),
                        section=_section(document.headings, blocks, piece_start, piece_end),
                    )
                )
        return chunks

    def _units(self, text: str, blocks: list[_Block]) -> Iterator[_Unit]:
        """Blocks that fit the hard limit whole; longer ones as balanced sentence pieces."""
        for index, block in enumerate(blocks):
            tokens = self.count_tokens(text[block.start : block.end])
            if tokens <= self.settings.max_tokens or block.is_heading:
                yield _Unit(block.start, block.end, tokens, index, False)
                continue
            sentences: list[tuple[int, int, int]] = []
            for start, end in _sentences(text, block.start, block.end):
                pieces = [(start, end)]
                if self.count_tokens(text[start:end]) > self.settings.max_tokens:
                    pieces = list(self._split_words(text, start, end))
                for piece_start, piece_end in pieces:
                    count = self.count_tokens(text[piece_start:piece_end])
                    sentences.append((piece_start, piece_end, count))
            groups = _balanced(sentences, self.settings.target_tokens)
            for first, last in self._overlapped(sentences, groups):
                start, end = sentences[first][0], sentences[last][1]
                count = self.count_tokens(text[start:end])
                yield _Unit(start, end, count, index, True)

    def _overlapped(
        self, sentences: list[tuple[int, int, int]], groups: list[tuple[int, int]]
    ) -> Iterator[tuple[int, int]]:
        """Each group after the first repeats up to ``overlap_sentences`` sentences of the
        one before (never all of it, and only while the group stays under the limit)."""
        previous: tuple[int, int] | None = None
        for first, last in groups:
            start = first
            if previous is not None:
                used = sum(tokens for _, _, tokens in sentences[first : last + 1])
                while start > max(previous[0] + 1, first - self.settings.overlap_sentences):
                    used += sentences[start - 1][2]
                    if used > self.settings.max_tokens:
                        break
                    start -= 1
            yield start, last
            previous = (first, last)

    def _split_words(self, text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Cut an over-long sentence at word boundaries into pieces under the limit."""
        limit = self.settings.target_tokens
        piece_start: int | None = None
        piece_end = start
        used = 0
        for match in _WORD.finditer(text, start, end):
            word_tokens = self.count_tokens(match.group())
            if piece_start is not None and used + word_tokens > limit:
                yield piece_start, piece_end
                piece_start, used = None, 0
            if piece_start is None:
                piece_start = match.start()
            if word_tokens > limit:
                yield from self._split_chars(text, match.start(), match.end())
                piece_start, used = None, 0
                continue
            piece_end = match.end()
            used += word_tokens
        if piece_start is not None:
            yield piece_start, piece_end

    def _split_chars(self, text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Last resort for a single enormous 'word' (e.g. a base64 blob)."""
        step = max(1, self.settings.target_tokens)
        while start < end:
            stop = min(end, start + step)
            limit = self.settings.max_tokens
            while stop > start + 1 and self.count_tokens(text[start:stop]) > limit:
                stop = start + max(1, (stop - start) // 2)
            yield start, stop
            start = stop

    def _pack(
        self, document: Document, units: list[_Unit], blocks: list[_Block]
    ) -> Iterator[tuple[int, int]]:
        """Group consecutive units into chunks; yields (first unit, last unit) pairs.

        Whole blocks are packed up to the target size; a piece of a split block is a
        chunk of its own. A chunk never spans two pages, a heading always opens a new
        chunk (a run of headings stays with the text under it if the two fit the hard
        limit, so no chunk is a bare heading that could have been avoided), and list
        items part once a chunk has ``min_chars``.
        """
        settings = self.settings
        pack = min(settings.pack_tokens, settings.target_tokens)
        first = 0
        used = 0
        has_body = False
        for index, unit in enumerate(units):
            block = blocks[unit.block]
            if index > first:
                before = units[index - 1]
                previous = blocks[before.block]
                chars = before.end - units[first].start
                new_page = document.page_at(unit.start) != document.page_at(units[first].start)
                heading = block.is_heading and has_body
                item = block.item is not None or previous.item is not None
                item = item and chars >= settings.min_chars and not previous.is_heading
                if has_body:
                    full = unit.split or before.split or used + unit.tokens > pack
                else:  # never leave a heading on its own if it fits with what follows
                    joined = document.text[units[first].start : unit.end]
                    full = self.count_tokens(joined) > settings.max_tokens
                if new_page or heading or item or full:
                    yield first, index - 1
                    first, used, has_body = index, 0, False
            used += unit.tokens
            has_body = has_body or not block.is_heading
        if first < len(units):
            yield first, len(units) - 1

    def _enforce_limit(self, text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Guarantee the hard token limit on the joined text (unit counts are estimates)."""
        if self.count_tokens(text[start:end]) <= self.settings.max_tokens:
            yield start, end
            return
        middle = _best_cut(text, start, end)
        if middle is None:
            yield from self._split_chars(text, start, end)
            return
        yield from self._enforce_limit(text, start, middle[0])
        yield from self._enforce_limit(text, middle[1], end)


def _balanced(sentences: list[tuple[int, int, int]], target: int) -> list[tuple[int, int]]:
    """Consecutive sentences grouped into the fewest pieces of about ``target`` tokens or
    less, of about equal size: (first, last) sentence index pairs."""
    total = sum(tokens for _, _, tokens in sentences)
    pieces = max(1, -(-total // target))
    groups: list[tuple[int, int]] = []
    first, used, left = 0, 0, total
    for index, (_, _, tokens) in enumerate(sentences):
        if index > first:
            goal = left / max(1, pieces - len(groups))
            over = used + tokens - goal
            if used + tokens > target or (over > 0 and over >= goal - used):
                groups.append((first, index - 1))
                left -= used
                first, used = index, 0
        used += tokens
    groups.append((first, len(sentences) - 1))
    return groups


def _best_cut(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A whitespace run near the middle of text[start:end]: (end of left, start of right)."""
    middle = (start + end) // 2
    best: tuple[int, int] | None = None
    for match in re.finditer(r"\s+", text[start:end]):
        left, right = start + match.start(), start + match.end()
        if left == start or right == end:
            continue
        if best is None or abs(left - middle) < abs(best[0] - middle):
            best = (left, right)
    return best


def _blocks(text: str, headings: tuple[Heading, ...]) -> list[_Block]:
    """Paragraph-level blocks: headings, list items, and paragraphs (soft line wraps joined)."""
    heading_starts = {h.start: h for h in headings}
    # (start, end) of every line; the next line starts one past the end's "\n".
    bounds = [*line_starts(text), len(text) + 1]
    lines = [(start, stop - 1) for start, stop in itertools.pairwise(bounds)]
    blocks: list[_Block] = []
    current: list[int] | None = None
    current_item: str | None = None
    previous_end_sentence = True
    for line_start, line_end in lines:
        stripped = text[line_start:line_end].strip()
        if not stripped:
            if current is not None:
                blocks.append(_Block(current[0], current[1], False, current_item))
            current, previous_end_sentence = None, True
            continue
        line = text[line_start:line_end]
        left = line_start + (len(line) - len(line.lstrip()))
        right = line_start + len(line.rstrip())
        heading = _heading_on_line(heading_starts, headings, left, right)
        marker = list_marker(text, line_start, line_end)
        starts_new = heading is not None or marker is not None or previous_end_sentence
        if current is not None and starts_new:
            blocks.append(_Block(current[0], current[1], False, current_item))
            current = None
        if heading is not None:
            blocks.append(_Block(left, right, True, None))
            previous_end_sentence = True
            continue
        if current is None:
            current = [left, right]
            current_item = marker.label if marker else None
        else:
            current[1] = right
        previous_end_sentence = bool(_CLAUSE_END.search(text, left, right))
    if current is not None:
        blocks.append(_Block(current[0], current[1], False, current_item))
    return blocks


def _heading_on_line(
    starts: dict[int, Heading], headings: tuple[Heading, ...], left: int, right: int
) -> Heading | None:
    for heading in headings:
        if left <= heading.start < right or heading.start <= left < heading.end:
            return heading
    return starts.get(left)


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans inside text[start:end] (a list marker such as ``1.`` stays with the
    sentence after it)."""
    marker = list_marker(text, start, end)
    if marker is None:
        return sentence_spans(text, start, end)
    spans = sentence_spans(text, marker.body, end)
    if spans:
        spans[0] = (start, spans[0][1])
    return spans


def _section(
    headings: tuple[Heading, ...], blocks: list[_Block], start: int, end: int
) -> str | None:
    """Heading path over the chunk's first body text, plus the numbered item(s) it covers."""
    first = max(0, bisect.bisect_right([b.start for b in blocks], start) - 1)
    covered = [b for b in blocks[first:] if b.start < end]
    anchor = next((max(start, b.start) for b in covered if not b.is_heading), start)
    path: list[Heading] = []
    for heading in headings:
        if heading.start > anchor:
            break
        while path and path[-1].level >= heading.level:
            path.pop()
        path.append(heading)
    items = [b.item for b in covered if b.item is not None]
    parts = [" ".join(h.title.split()) for h in path]
    if items:
        parts.append(f"item {items[0]}" if len(items) == 1 else f"items {items[0]}–{items[-1]}")
    return " › ".join(parts) if parts else None
