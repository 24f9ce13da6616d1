"""Recordings: what was said (transcript units with times) and how it sounds (fixed windows).

Two kinds of segment come out. "transcript" segments carry whisper's text, one sentence
each, timed by its words (see `merge_units`), for keyword and text-vector search. "window"
segments are fixed overlapping stretches of audio for the audio spaces ("more like this
sound", or text to sound with CLAP); their `content` stays empty because the transcript
already holds the words with tighter times: copying them onto 10-s windows would make every
phrase match twice, with worse timestamps, and double the text-embedding work.

Memory stays bounded on long files. The audio is decoded twice, streaming both times: at
16 kHz into the transcriber, which works in 2-minute chunks, and at the window rate into
an anonymous temporary file that is memory-mapped, so each window's `audio` is a view of
that file rather than a copy in RAM (silence is judged from loudness computed on the way
in, so nothing reads the map back here). The kernel pages it in when the audio embedder
reads it and can drop it again; the file disappears with the last view. A two-hour
44.1 kHz recording costs 1.3 GB of temporary disk, not of memory. Decoding takes a few
percent of whisper's time, so the second pass costs little and keeps each consumer simple.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch.errors import reason
from mmsearch.ingest.media import DecodeStats, audio_blocks, probe
from mmsearch.ingest.transcribe import UNIT_MAX_S
from mmsearch.ingest.types import Extracted, ExtractError, SegmentDraft

if TYPE_CHECKING:
    from mmsearch.ingest.detect import Detected
    from mmsearch.ingest.transcribe import Transcriber, Transcript

#: windows keep the file's own rate up to this (sound models read at most 44.1-48 kHz)
MAX_WINDOW_RATE = 48_000
#: a window quieter than this RMS (-80 dBFS) is digital silence and gets no segment
SILENCE_RMS = 1e-4


def extract_audio(
    path: str | os.PathLike[str],
    detected: Detected,
    transcriber: Transcriber | None,
    *,
    window_s: float | None = 10.0,
    hop_s: float = 5.0,
    window_rate: int | None = None,
    unit_max_s: float = UNIT_MAX_S,
) -> Extracted:
    """Transcript units (when `transcriber` is given) followed by sound windows.

    Windows are `window_s` long every `hop_s` seconds, the last one cut at the end of the
    file; `window_s=None` makes none. Their audio is mono float32 at `window_rate`, by
    default the file's own rate capped at 48 kHz, so no detail is lost before the audio
    embedder resamples to its model's rate.
    """
    path = Path(path)
    info = probe(path)
    if info.audio is None:
        raise ExtractError("the file has no audio stream")
    stats = DecodeStats()  # the first pass counts damaged packets
    windows: list[SegmentDraft] = []
    if window_s is not None:
        rate = window_rate or min(info.audio.sample_rate or MAX_WINDOW_RATE, MAX_WINDOW_RATE)
        pcm, power = _spool(audio_blocks(path, rate, stats=stats), rate // 10)
        windows = sound_windows(pcm, rate, power, window_s=window_s, hop_s=hop_s)
    transcript = None
    if transcriber is not None:
        transcript = transcribe_file(path, transcriber, stats if window_s is None else None)
    units = transcript_segments(transcript, unit_max_s=unit_max_s) if transcript else []

    described: dict[str, Any] = {
        "codec": info.audio.codec,
        "sample_rate": info.audio.sample_rate,
        "channels": info.audio.channels,
        "language": transcript.language if transcript else None,
        "decode_errors": stats.bad_packets or None,
        **{k: v for k, v in info.tags.items() if k != "title"},
    }
    return Extracted(
        media_type="audio",
        mime=detected.mime,
        title=info.tags.get("title") or path.stem,
        segments=units + windows,
        duration_s=round(stats.decoded_s, 3) if stats.decoded_s else info.duration_s,
        metadata={k: v for k, v in described.items() if v is not None},
    )


def transcribe_file(
    path: str | os.PathLike[str], transcriber: Transcriber, stats: DecodeStats | None = None
) -> Transcript:
    """Stream the file's audio at 16 kHz through the transcriber; model failures become
    `ExtractError`s of the "transcribe" stage."""
    from mmsearch.ingest.transcribe import SAMPLE_RATE

    try:
        return transcriber.transcribe(audio_blocks(path, SAMPLE_RATE, stats=stats))
    except ExtractError:
        raise
    except Exception as exc:
        raise ExtractError(f"transcription failed: {reason(exc)}", stage="transcribe") from exc


def transcript_segments(transcript: Transcript, *, unit_max_s: float) -> list[SegmentDraft]:
    """One "transcript" segment per retrieval unit (see `merge_units`)."""
    from mmsearch.ingest.transcribe import merge_units

    return [
        SegmentDraft(
            kind="transcript",
            content=unit.text,
            start_s=unit.start,
            end_s=unit.end,
            metadata={"avg_logprob": unit.avg_logprob, "no_speech_prob": unit.no_speech_prob},
        )
        for unit in merge_units(transcript.segments, max_s=unit_max_s)
    ]


def sound_windows(
    pcm: np.ndarray, rate: int, power: np.ndarray, *, window_s: float, hop_s: float
) -> list[SegmentDraft]:
    """Overlapping windows over `pcm` (views, not copies), skipping digital silence.

    `power` is the mean square of each 100 ms of `pcm`: silence is judged from it, so the
    audio itself is not read back here.
    """
    if hop_s <= 0 or window_s <= 0:
        raise ValueError("window_s and hop_s must be positive")
    length, hop, frame = int(window_s * rate), int(hop_s * rate), rate // 10
    windows = []
    for start in range(0, max(len(pcm), 1), hop):
        clip = pcm[start : start + length]
        loudness = power[start // frame : -(-(start + len(clip)) // frame)]
        if len(clip) and float(np.sqrt(loudness.mean())) >= SILENCE_RMS:
            windows.append(
                SegmentDraft(
                    kind="window",
                    start_s=round(start / rate, 3),
                    end_s=round((start + len(clip)) / rate, 3),
                    audio=clip,
                    sample_rate=rate,
                )
            )
        if start + length >= len(pcm):
            break
    return windows


def _spool(blocks: Iterable[np.ndarray], frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Write float32 blocks to an unnamed temporary file and map it read-only, with the mean
    square of every `frame` samples computed on the way (see `sound_windows`)."""
    power: list[np.ndarray] = []
    tail = np.zeros(0, dtype=np.float32)
    count = 0
    with tempfile.TemporaryFile(prefix="mmsearch-pcm-") as spool:
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=np.float32)
            spool.write(block.tobytes())
            count += len(block)
            joined = np.concatenate([tail, block])
            whole = len(joined) // frame * frame
            power.append(np.square(joined[:whole]).reshape(-1, frame).mean(axis=1))
            tail = joined[whole:]
        power.append(np.square(tail).mean(keepdims=True) if len(tail) else np.zeros(0))
        spool.flush()
        if count == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0)
        pcm = np.memmap(spool, dtype=np.float32, mode="r", shape=(count,))
    return pcm, np.concatenate(power)
