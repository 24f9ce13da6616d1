"""Audio and video containers through PyAV: probe what a file holds, stream its decoded audio
and frames.

Real files have damaged packets, so decoding goes packet by packet: a packet that fails is
counted and skipped, never fatal, and the audio after it keeps its place on the timeline
(the gap becomes silence). Audio is yielded in blocks, so a two-hour file never sits in
memory whole. A file that cannot be opened, or that decodes to much less than its header
declares (cut off mid-download), raises `ExtractError` with a one-line reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch.errors import one_line
from mmsearch.ingest import limits
from mmsearch.ingest.types import ExtractError

if TYPE_CHECKING:
    import av

#: a file whose streams decode to less than this share of the declared duration is truncated
COMPLETE_SHARE = 0.9
#: ... unless the missing tail is shorter than this (declared durations are often estimates)
MISSING_TOLERANCE_S = 1.0
#: a jump in audio timestamps larger than this is a gap (a skipped packet), filled with silence
GAP_S = 0.05
#: ... up to this long; a bigger jump is a broken timestamp, and the audio just goes on
MAX_GAP_S = 60.0
#: tags copied from the container into record metadata (title becomes the record's title)
TAG_KEYS = ("title", "artist", "album", "album_artist", "date", "genre", "comment")


@dataclass(frozen=True)
class AudioTrack:
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class VideoTrack:
    codec: str
    width: int
    height: int
    fps: float | None
    frames: int | None


@dataclass(frozen=True)
class MediaInfo:
    """What the container says about itself; durations are declared, not yet decoded."""

    format: str
    duration_s: float | None
    audio: AudioTrack | None
    video: VideoTrack | None
    tags: dict[str, str]


@dataclass
class DecodeStats:
    """Filled in while a stream decodes: how many packets failed and how much came out."""

    packets: int = 0
    bad_packets: int = 0
    decoded_s: float = 0.0


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Open the container and describe its first audio and video streams."""
    with _open(path) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        video = _video_stream(container)
        return MediaInfo(
            format=container.format.name,
            duration_s=container.duration / 1_000_000 if container.duration else None,
            audio=None if audio is None else _audio_track(audio),
            video=None if video is None else _video_track(video),
            tags=_tags(container, audio),
        )


def audio_blocks(
    path: str | os.PathLike[str],
    sample_rate: int,
    *,
    block_s: float = 30.0,
    stats: DecodeStats | None = None,
) -> Iterator[np.ndarray]:
    """Mono float32 PCM at `sample_rate`, in blocks of about `block_s` seconds, from 0 s.

    Channels are averaged and resampled by FFmpeg's resampler. `stats`, if given, is updated
    as blocks come out; the generator raises `ExtractError` for a file without audio or one
    whose audio stops well short of its declared duration.
    """
    stats = stats if stats is not None else DecodeStats()
    block = max(1, int(block_s * sample_rate))
    pending: list[np.ndarray] = []
    pending_n = 0
    with _open(path) as container:
        if not container.streams.audio:
            raise ExtractError("the file has no audio stream")
        stream = container.streams.audio[0]
        for piece in _pcm(container, stream, sample_rate, stats):
            pending.append(piece)
            pending_n += len(piece)
            if pending_n >= block:
                yield np.concatenate(pending)
                pending, pending_n = [], 0
        if stats.decoded_s == 0:
            raise ExtractError(f"no audio could be decoded ({_bad(stats)})")
        _check_complete(_declared(container, stream), stats, "audio")
    if pending:
        yield np.concatenate(pending)


def video_frames(
    path: str | os.PathLike[str], *, stats: DecodeStats | None = None
) -> Iterator[tuple[float, av.VideoFrame]]:
    """(seconds from the start, frame) for every decodable frame of the first video stream.

    Frames come in presentation order. Raises `ExtractError` for a file without a video
    stream, without any decodable frame, or with frames stopping well short of the end.
    """
    stats = stats if stats is not None else DecodeStats()
    with _open(path) as container:
        stream = _video_stream(container)
        if stream is None:
            raise ExtractError("the file has no video stream")
        stream.thread_type = "AUTO"  # frame-parallel decoding: about twice as fast on 2 cores
        origin = _origin(container, stream)
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        count = 0
        t = 0.0
        for frame in _frames(container, stream, stats):
            t = frame.time - origin if frame.time is not None else count / fps
            count += 1
            stats.decoded_s = t + 1 / fps
            yield max(t, 0.0), frame
        if count == 0:
            raise ExtractError(f"no video frame could be decoded ({_bad(stats)})")
        # an AVI cut short loses its index and then reports the duration it could scan,
        # but its header still counts every frame
        declared = max(_declared(container, stream) or 0.0, (stream.frames or 0) / fps)
        _check_complete(declared or None, stats, "video")


def _audio_track(stream: Any) -> AudioTrack:
    ctx = stream.codec_context
    return AudioTrack(ctx.name, int(ctx.sample_rate or 0), int(ctx.channels or 0))


def _video_track(stream: Any) -> VideoTrack:
    ctx = stream.codec_context
    fps = float(stream.average_rate or stream.guessed_rate or 0) or None
    return VideoTrack(ctx.name, int(ctx.width), int(ctx.height), fps, int(stream.frames) or None)


def _tags(container: Any, audio: Any) -> dict[str, str]:
    """Descriptive tags, keys lower-cased; Ogg and some others keep them on the stream."""
    found = {k.lower(): v for k, v in container.metadata.items()}
    if audio is not None:
        found.update({k.lower(): v for k, v in audio.metadata.items() if k.lower() not in found})
    tags = {key: " ".join(str(found.get(key, "")).split()) for key in TAG_KEYS}
    return {key: value for key, value in tags.items() if value}


def _open(path: str | os.PathLike[str]) -> Any:
    import av

    try:
        return av.open(os.fspath(path), metadata_errors="replace")
    except OSError:  # missing, unreadable: the pipeline reports these as read errors
        raise
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise ExtractError(f"not a readable audio or video file: {_reason(exc)}") from exc


def _video_stream(container: Any) -> Any:
    """The first real video stream; cover art in MP3/M4A files is an attached picture."""
    for stream in container.streams.video:
        if not stream.disposition & _attached_pic():
            return stream
    return None


def _attached_pic() -> int:
    import av

    return int(av.stream.Disposition.attached_pic)


def _frames(container: Any, stream: Any, stats: DecodeStats) -> Iterator[Any]:
    """Decode packet by packet; a packet the decoder rejects is counted and skipped."""
    import av

    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError:  # the demuxer cannot go on: keep what was decoded
            stats.bad_packets += 1
            return
        stats.packets += 1
        limits.check()
        try:
            frames = packet.decode()
        except (av.error.FFmpegError, ValueError):
            stats.bad_packets += 1
            continue
        yield from frames


def _pcm(container: Any, stream: Any, rate: int, stats: DecodeStats) -> Iterator[np.ndarray]:
    """Resampled mono pieces laid on the file's timeline: a gap left by a skipped packet
    is filled with silence, so later audio keeps its timestamps."""
    origin = _origin(container, stream)
    written = 0
    resampler: Any = None
    setup: tuple[Any, ...] = ()
    for frame in _frames(container, stream, stats):
        if (frame.format.name, frame.layout.name, frame.rate) != setup:
            # a mid-stream format change (radio rips do this) needs a fresh resampler
            pieces = _resample(resampler, None) if resampler is not None else []
            resampler = _resampler(rate)
            setup = (frame.format.name, frame.layout.name, frame.rate)
        else:
            pieces = []
        if frame.time is not None:
            gap = round((frame.time - origin) * rate) - written - sum(map(len, pieces))
            if GAP_S * rate < gap <= MAX_GAP_S * rate:  # a wild timestamp is not a gap
                pieces.append(np.zeros(gap, dtype=np.float32))
        pieces.extend(_resample(resampler, frame))
        for piece in pieces:
            written += len(piece)
            stats.decoded_s = written / rate
            yield piece
    if resampler is not None:
        for piece in _resample(resampler, None):
            written += len(piece)
            stats.decoded_s = written / rate
            yield piece


def _resampler(rate: int) -> Any:
    import av

    return av.AudioResampler(format="flt", layout="mono", rate=rate)


def _resample(resampler: Any, frame: Any) -> list[np.ndarray]:
    return [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]


def _origin(container: Any, stream: Any) -> float:
    """Time zero of the file: the container's start time (streams may begin after it)."""
    if container.start_time is not None:
        return container.start_time / 1_000_000
    if stream.start_time is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


def _declared(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / 1_000_000 if container.duration else None


def _check_complete(declared: float | None, stats: DecodeStats, what: str) -> None:
    if declared is None:
        return
    missing = declared - stats.decoded_s
    if missing > MISSING_TOLERANCE_S and stats.decoded_s < COMPLETE_SHARE * declared:
        raise ExtractError(
            f"truncated or corrupt: the {what} stops at {stats.decoded_s:.1f} s"
            f" of the {declared:.1f} s the file declares ({_bad(stats)})"
        )


def _bad(stats: DecodeStats) -> str:
    return f"{stats.bad_packets} of {stats.packets} packets undecodable"


def _reason(exc: BaseException) -> str:
    """FFmpeg's message without its errno prefix and the quoted path (the row has the path)."""
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", one_line(str(exc)))
    return text.split(": '")[0][:200] or type(exc).__name__
