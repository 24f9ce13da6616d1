"""Split text into overlapping chunks that fit a text model's input, cut on natural boundaries.

A text model reads a bounded number of its own tokens and silently drops the rest, so chunks
are sized with the model's tokenizer, not in characters. Cuts fall between paragraphs where
possible, else between sentences, and only inside a sentence (at a word, or inside a
pathological "word") when a single sentence is too long. Each chunk is a character span of
the input, so a hit can be shown and highlighted in the original text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from mmsearch.ingest import limits

#: a chunk never spans more characters than this per token of budget: blobs that tokenise
#: into a few [UNK]s (base64, minified code) still make chunks of a readable size
MAX_CHARS_PER_TOKEN = 10

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# the end of a sentence, or a line break before a Markdown block (heading, list item, quote,
# table row, code fence): hard-wrapped prose keeps its single newlines inside sentences
_SENTENCE_END = re.compile(
    r"[.!?…]+[\"'”’)\]]*(?=\s)|[。！？]+|\n(?=[ \t]*(?:#{1,6}\s|[-*+]\s|\d{1,3}[.)]\s|>|\||```))"
)
_WORD = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class _Unit:
    """A sentence (or a piece of an over-long one): the smallest thing a chunk holds."""

    start: int
    end: int
    cost: int
    paragraph: int


class Chunker:
    """Packs sentences into chunks of at most `max_tokens`, repeating about `overlap_tokens`
    of the previous chunk's tail at the start of the next so a cut never loses context.

    Token counts of sentences and words are summed rather than recounted per chunk (word-piece
    tokenizers split on whitespace, so the sum matches) and cached, which keeps a 1 MB text
    to one tokenizer call per distinct sentence.
    """

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        max_tokens: int = 240,
        overlap_tokens: int = 32,
    ) -> None:
        if max_tokens < 1 or not 0 <= overlap_tokens < max_tokens:
            raise ValueError("need max_tokens >= 1 and 0 <= overlap_tokens < max_tokens")
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self._count_tokens = count_tokens
        self._cost = lru_cache(maxsize=1 << 14)(self._uncached_cost)

    def _uncached_cost(self, text: str) -> int:
        return max(self._count_tokens(text), -(-len(text) // MAX_CHARS_PER_TOKEN))

    def chunks(self, text: str) -> list[tuple[int, int]]:
        """Character spans `(start, end)` of the chunks, in order; none is whitespace-only."""
        units = self._units(text)
        paragraph_cost: dict[int, int] = {}
        for unit in units:
            paragraph_cost[unit.paragraph] = paragraph_cost.get(unit.paragraph, 0) + unit.cost

        spans: list[tuple[int, int]] = []
        start: int | None = None  # where the open chunk starts (maybe inside an earlier unit)
        tokens = 0
        first = last = 0  # the open chunk's first new unit and its last unit
        for i, unit in enumerate(units):
            opened = start is None
            if not opened:
                whole = paragraph_cost[unit.paragraph]
                # a paragraph that fits a chunk of its own moves there whole rather than
                # being split, unless the open chunk is still short
                keep_whole = (
                    unit.paragraph != units[last].paragraph
                    and whole <= self.max_tokens
                    and tokens >= self.max_tokens // 4
                )
                if tokens + unit.cost > self.max_tokens or (
                    keep_whole and tokens + whole > self.max_tokens
                ):
                    spans.append((start, units[last].end))
                    needed = whole if keep_whole else unit.cost
                    start, tokens = self._overlap(text, units, first, last, needed)
                    opened = True
            if opened:
                first = i
                if start is None:
                    start, tokens = unit.start, 0
            tokens += unit.cost
            last = i
        if start is not None:
            spans.append((start, units[last].end))
        return spans

    def _units(self, text: str) -> list[_Unit]:
        units: list[_Unit] = []
        position = 0
        paragraphs = [*_PARAGRAPH_BREAK.finditer(text), None]
        for number, separator in enumerate(paragraphs):
            limits.check()  # a long text is within the file's time and memory budget too
            end = separator.start() if separator else len(text)
            sentence_start = position
            for match in _SENTENCE_END.finditer(text, position, end):
                self._add_sentence(text, sentence_start, match.end(), number, units)
                sentence_start = match.end()
            self._add_sentence(text, sentence_start, end, number, units)
            position = separator.end() if separator else end
        return units

    def _add_sentence(
        self, text: str, start: int, end: int, paragraph: int, units: list[_Unit]
    ) -> None:
        span = _strip(text, start, end)
        if span is None:
            return
        start, end = span
        cost = self._cost(text[start:end])
        if cost <= self.max_tokens:
            units.append(_Unit(start, end, cost, paragraph))
            return
        # too long for one chunk: pack its words, and cut any over-long word by characters
        piece_start, piece_cost, piece_end = start, 0, start
        for word in _WORD.finditer(text, start, end):
            word_cost = self._cost(word.group())
            if piece_cost and piece_cost + word_cost > self.max_tokens:
                units.append(_Unit(piece_start, piece_end, piece_cost, paragraph))
                piece_cost = 0
            if word_cost > self.max_tokens:
                units.extend(self._split_word(text, *word.span(), paragraph))
                continue
            if piece_cost == 0:
                piece_start = word.start()
            piece_cost += word_cost
            piece_end = word.end()
        if piece_cost:
            units.append(_Unit(piece_start, piece_end, piece_cost, paragraph))

    def _split_word(self, text: str, start: int, end: int, paragraph: int) -> list[_Unit]:
        pieces = []
        while start < end:
            length = min(end - start, self.max_tokens * MAX_CHARS_PER_TOKEN)
            while (cost := self._cost(text[start : start + length])) > self.max_tokens:
                length = max(1, length // 2)
            pieces.append(_Unit(start, start + length, cost, paragraph))
            start += length
        return pieces

    def _overlap(
        self, text: str, units: list[_Unit], first: int, last: int, needed: int
    ) -> tuple[int | None, int]:
        """Where the next chunk starts inside the closed one, and the tokens that carries.

        Whole trailing sentences are preferred; when even the last one is too long, its
        trailing words. The overlap never covers the closed chunk's first unit (the next
        chunk would then contain the whole previous one) and leaves room for `needed`.
        """
        budget = min(self.overlap_tokens, self.max_tokens - needed)
        if budget <= 0:
            return None, 0
        start, tokens = None, 0
        for unit in reversed(units[first + 1 : last + 1]):
            if tokens + unit.cost > budget:
                break
            start, tokens = unit.start, tokens + unit.cost
        if start is not None:
            return start, tokens
        tail = units[last]
        for word in reversed(list(_WORD.finditer(text, tail.start, tail.end))[1:]):
            cost = self._cost(word.group())
            if tokens + cost > budget:
                break
            start, tokens = word.start(), tokens + cost
        return start, tokens


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span without surrounding whitespace, or None when nothing is left."""
    segment = text[start:end]
    stripped = segment.lstrip()
    if not stripped:
        return None
    start += len(segment) - len(stripped)
    return start, start + len(stripped.rstrip())
