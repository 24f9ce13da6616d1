"""Speech to timed text with the packaged faster-whisper tiny.en, on speech from espeak-ng."""

from __future__ import annotations

import numpy as np
import pytest

from mmsearch.ingest.transcribe import Segment, Transcriber, Word, hallucinated, merge_units
from tests.avmedia import silence, speech

SENTENCE_A = "The weather today is sunny and warm."
SENTENCE_B = "Please remember to buy milk and bread."
RATE = 16_000


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber()


def _placed(*parts: tuple[str | None, float]) -> tuple[np.ndarray, list[float]]:
    """Concatenate sentences (text) and pauses (None) of given seconds; return where each
    sentence starts."""
    pieces, starts, at = [], [], 0.0
    for text, seconds in parts:
        piece = silence(seconds) if text is None else speech(text)
        if text is not None:
            starts.append(at)
        pieces.append(piece)
        at += len(piece) / RATE
    return np.concatenate(pieces), starts


@pytest.mark.model
def test_sentences_get_their_own_times(transcriber: Transcriber) -> None:
    audio, (a_at, b_at) = _placed((None, 2.0), (SENTENCE_A, 0), (None, 4.0), (SENTENCE_B, 0))
    audio = np.concatenate([audio, silence(1.0)])
    transcript = transcriber.transcribe(audio)
    units = merge_units(transcript.segments)

    assert transcript.language == "en"
    assert len(units) == 2, units
    first, second = units
    assert "sunny" in first.text.lower()
    assert "milk" in second.text.lower()
    assert abs(first.start - a_at) < 0.6, (first, a_at)
    assert abs(second.start - b_at) < 0.6, (second, b_at)
    assert first.end <= second.start
    b_end = len(audio) / RATE - 1.0
    assert second.end <= b_end + 0.6
    # the words of a time range are those spoken inside it
    assert "milk" in transcript.text_between(b_at - 0.2, b_end + 0.2).lower()
    assert "milk" not in transcript.text_between(0, b_at - 0.5).lower()


@pytest.mark.model
def test_no_speech_gives_no_segments(transcriber: Transcriber) -> None:
    t = np.arange(8 * RATE) / RATE
    rng = np.random.default_rng(0)
    audio = np.concatenate(
        [
            silence(4.0),
            0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32),  # a steady tone
            rng.normal(0, 0.05, 8 * RATE).astype(np.float32),  # hiss
        ]
    )
    transcript = transcriber.transcribe(audio)
    assert transcript.segments == ()
    assert transcript.language is None
    assert merge_units(transcript.segments) == []


@pytest.mark.model
def test_streamed_chunks_keep_timestamps(transcriber: Transcriber) -> None:
    """A stream of small blocks, transcribed in 35-s chunks: speech after the first chunk
    boundary keeps its place on the recording's timeline."""
    audio, (a_at, b_at) = _placed(
        (None, 3.0), (SENTENCE_A, 0), (None, 40.0), (SENTENCE_B, 0), (None, 2.0)
    )
    blocks = (audio[i : i + RATE] for i in range(0, len(audio), RATE))
    chunked = Transcriber(chunk_s=35.0).transcribe(blocks)
    starts = {("milk" in s.text.lower()): s.start for s in chunked.segments}
    assert len(chunked.segments) == 2, chunked.segments
    assert abs(starts[False] - a_at) < 0.6
    assert abs(starts[True] - b_at) < 0.6


def _segment(words: list[tuple[float, float, str]]) -> Segment:
    return Segment(
        start=words[0][0],
        end=words[-1][1],
        text="".join(w for _, _, w in words).strip(),
        avg_logprob=-0.2,
        no_speech_prob=0.1,
        words=tuple(Word(s, e, w, 0.9) for s, e, w in words),
    )


def test_units_close_at_sentence_ends_and_pauses() -> None:
    sentences = [
        _segment([(0.0, 2.0, " One"), (2.0, 4.0, " two.")]),
        _segment([(4.2, 8.0, " Three"), (8.0, 12.0, " four.")]),  # >= min_s: unit closes
        _segment([(12.1, 13.0, " Five.")]),
        _segment([(16.0, 17.0, " Six")]),  # a 3-s pause starts a new unit
    ]
    units = merge_units(sentences, min_s=10.0, max_gap_s=2.0)
    assert [u.text for u in units] == ["One two. Three four.", "Five.", "Six"]
    assert [(u.start, u.end) for u in units] == [(0.0, 12.0), (12.1, 13.0), (16.0, 17.0)]


def test_long_speech_is_cut_after_the_last_sentence_end() -> None:
    words = [(i * 1.0, i * 1.0 + 0.9, f" w{i}{'.' if i == 12 else ''}") for i in range(40)]
    units = merge_units([_segment(words)], max_s=30.0, min_s=20.0)
    assert units[0].text.endswith("w12.")  # cut at the sentence end, not at 30 s
    assert all(u.end - u.start <= 30.0 for u in units)
    assert " ".join(u.text for u in units).split() == [w.strip() for _, _, w in words]


def test_each_sentence_said_after_a_pause_is_its_own_moment() -> None:
    """Prompts read one after another: one word, a clause and a sentence each get their own
    unit with their words' times, however short; a sentence said straight after another
    joins it until the unit lasts `min_s`."""
    spoken = _segment(
        [
            (0.0, 0.9, " received."),
            (2.2, 2.6, " In"),
            (2.6, 3.4, " valid"),
            (3.4, 3.9, " choice."),  # 1.3 s pause before: a new unit
            (4.1, 4.5, " Press"),  # 0.2 s after a sentence end: same burst
            (4.5, 5.0, " one."),
            (5.7, 6.0, " is,"),  # a clause end, then 0.8 s: a new unit
            (6.8, 7.6, " extension"),
            (7.6, 8.4, " unavailable"),
            (9.6, 10.4, " activated"),  # over max_gap_s without punctuation
        ]
    )
    units = merge_units([spoken], min_s=4.0, max_gap_s=1.0, phrase_gap_s=0.4)
    assert [u.text for u in units] == [
        "received.",
        "In valid choice. Press one.",
        "is,",
        "extension unavailable",
        "activated",
    ]
    assert (units[0].start, units[0].end) == (0.0, 0.9)
    assert (units[3].start, units[3].end) == (6.8, 8.4)


def test_a_burst_of_sentences_closes_once_it_lasts_min_s() -> None:
    burst = _segment([(i * 1.0, i * 1.0 + 0.9, f" Word{i}.") for i in range(10)])  # 0.1 s gaps
    units = merge_units([burst], min_s=3.0, phrase_gap_s=0.4)
    assert [u.text for u in units] == [
        "Word0. Word1. Word2. Word3.",
        "Word4. Word5. Word6. Word7.",
        "Word8. Word9.",
    ]


def test_text_made_up_from_a_sound_is_recognised() -> None:
    """A segment whisper doubts is speech and whose words it doubts too is made up; real
    speech scored as possibly silent, but with sure words, is kept."""

    def scored(no_speech: float, *probabilities: float) -> Segment:
        words = tuple(Word(i, i + 0.5, f" w{i}", p) for i, p in enumerate(probabilities))
        return Segment(0.0, len(words), "".join(w.text for w in words), -1.0, no_speech, words)

    assert hallucinated(scored(0.59, 0.11, 0.35, 0.68, 0.52, 0.71))  # "We'll see you next time."
    assert hallucinated(scored(0.88, 0.01))  # "You"
    assert not hallucinated(scored(0.67, 0.8, 0.9, 0.7))  # prompts over a quiet line
    assert not hallucinated(scored(0.1, 0.3, 0.4))  # whisper hears speech, words unsure
    assert not hallucinated(Segment(0.0, 1.0, "Hm", -1.0, 0.9, ()))  # no word times: kept
