"""Real media made here: speech from espeak-ng, audio and video files assembled with PyAV.

Used by the demo, the tests and the evaluation sets: the speech is a real synthesiser's and
the files are real encodes, so the decoders and models see what they see in production.
`espeak_binary` installs Debian's espeak-ng when running as root; elsewhere it raises
`MediaUnavailable` with the reason.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np

CACHE = Path(os.environ.get("MMSEARCH_MEDIA_CACHE", "/tmp/mmsearch-media"))


class MediaUnavailable(RuntimeError):
    """A generator's tool (espeak-ng) is missing and cannot be installed here."""


def espeak_binary() -> str:
    """espeak-ng, installed through apt when running as root."""
    found = shutil.which("espeak-ng")
    if found:
        return found
    if os.geteuid() != 0:
        raise MediaUnavailable("espeak-ng is not installed and installing it needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "espeak-ng"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise MediaUnavailable(f"cannot install espeak-ng: {done.stderr.strip()[-300:]}")
    found = shutil.which("espeak-ng")
    if not found:
        raise MediaUnavailable("espeak-ng not on PATH after install")
    return found


def speech(text: str, rate: int = 16_000, *, cache: Path = CACHE) -> np.ndarray:
    """`text` spoken by espeak-ng, mono float32 at `rate`, leading/trailing silence trimmed."""
    from mmsearch.ingest.media import audio_blocks

    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"speech-{hashlib.sha1(text.encode()).hexdigest()[:16]}.wav"
    if not path.exists():
        subprocess.run([espeak_binary(), "-w", str(path), text], check=True, capture_output=True)
    pcm = np.concatenate(list(audio_blocks(path, rate)))
    loud = np.flatnonzero(np.abs(pcm) > 0.01)
    return pcm[loud[0] : loud[-1] + 1]


def silence(seconds: float, rate: int = 16_000) -> np.ndarray:
    return np.zeros(round(seconds * rate), dtype=np.float32)


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def write_audio(
    path: Path, pcm: np.ndarray, rate: int, codec: str, *, tags: dict[str, str] | None = None
) -> Path:
    """Encode mono float PCM with PyAV (flac, libmp3lame, libopus, aac, ...)."""
    import av

    with av.open(str(path), "w") as out:
        out.metadata.update(tags or {})
        stream = out.add_stream(codec, rate=rate, layout="mono")
        _encode_audio(out, stream, pcm, rate)
    return path


def write_video(
    path: Path,
    pictures: list[tuple[np.ndarray, float]],
    *,
    fps: int = 10,
    audio: np.ndarray | None = None,
    rate: int = 16_000,
) -> Path:
    """An H.264 video showing each (RGB array, seconds) in turn, with an optional AAC track."""
    import av

    height, width = pictures[0][0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=rate, layout="mono") if audio is not None else None
        index = 0
        for pixels, seconds in pictures:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            for _ in range(round(seconds * fps)):
                frame.pts = index
                index += 1
                out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            _encode_audio(out, sound, audio, rate)
    return path


def _encode_audio(out: Any, stream: Any, pcm: np.ndarray, rate: int) -> None:
    import av

    samples = np.ascontiguousarray(pcm, dtype=np.float32).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
    frame.sample_rate = rate
    frame.pts = 0
    resampler = av.AudioResampler(format=stream.codec_context.format, layout="mono", rate=rate)
    size = stream.codec_context.frame_size or 1024
    fifo = av.AudioFifo()
    for converted in resampler.resample(frame):
        fifo.write(converted)
    while fifo.samples:
        out.mux(stream.encode(fifo.read(min(size, fifo.samples), partial=True)))
    out.mux(stream.encode(None))
