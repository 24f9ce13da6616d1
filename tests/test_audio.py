"""Audio extraction on real recordings: formats, transcript units, sound windows, damage.

Speech comes from espeak-ng, damaged and foreign files from real encoders and Debian's
opencv-doc (Megamind.avi has an AC3 packet that does not decode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmsearch.ingest.audio import extract_audio
from mmsearch.ingest.detect import detect
from mmsearch.ingest.transcribe import Transcriber
from mmsearch.ingest.types import ExtractError
from tests.avmedia import opencv_clip, silence, speech, write_audio, write_wav
from tests.media import write_truncated

RATE = 16_000
SENTENCE = "Please remember to buy milk and bread."


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber()


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    """23 s of varying sound (no digital silence): windows everywhere."""
    rng = np.random.default_rng(7)
    return (0.1 * rng.standard_normal(23 * RATE)).astype(np.float32)


@pytest.mark.model
def test_recording_with_speech(tmp_path: Path, transcriber: Transcriber) -> None:
    spoken = speech(SENTENCE)
    start = 12.0
    pcm = np.concatenate([silence(start), spoken, silence(4.0)])
    path = write_audio(tmp_path / "memo.mp3", pcm, RATE, "libmp3lame", tags={"title": "Memo 7"})

    extracted = extract_audio(path, detect(path), transcriber)

    assert extracted.media_type == "audio"
    assert extracted.mime == "audio/mpeg"
    assert extracted.title == "Memo 7"
    assert extracted.duration_s == pytest.approx(len(pcm) / RATE, abs=0.1)
    assert extracted.metadata["sample_rate"] == RATE
    assert extracted.metadata["channels"] == 1
    assert extracted.metadata["codec"].startswith("mp3")
    assert extracted.metadata["language"] == "en"
    transcript = [s for s in extracted.segments if s.kind == "transcript"]
    assert len(transcript) == 1
    assert "milk" in transcript[0].content.lower()
    assert abs(transcript[0].start_s - start) < 0.6
    assert transcript[0].end_s <= start + len(spoken) / RATE + 0.6
    windows = [s for s in extracted.segments if s.kind == "window"]
    assert windows and all(w.content is None and w.sample_rate == RATE for w in windows)
    # the first window holds only digital silence: it is left out
    assert windows[0].start_s == 5.0


def test_windows_overlap_and_reach_the_end(tmp_path: Path, noise: np.ndarray) -> None:
    path = write_wav(tmp_path / "noise.wav", noise, RATE)
    extracted = extract_audio(path, detect(path), None)

    windows = extracted.segments
    assert [(w.start_s, w.end_s) for w in windows] == [
        (0.0, 10.0), (5.0, 15.0), (10.0, 20.0), (15.0, 23.0),
    ]  # fmt: skip
    assert all(w.kind == "window" and w.sample_rate == RATE for w in windows)
    assert all(w.audio.dtype == np.float32 and w.audio.ndim == 1 for w in windows)
    np.testing.assert_allclose(windows[1].audio[:100], noise[5 * RATE : 5 * RATE + 100], atol=1e-4)
    assert "language" not in extracted.metadata  # nothing was transcribed
    assert extracted.title == "noise"

    other = extract_audio(path, detect(path), None, window_s=4.0, hop_s=4.0, window_rate=8000)
    lengths = [w.end_s - w.start_s for w in other.segments]
    assert lengths == pytest.approx([4.0] * 5 + [3.0], abs=0.01)
    assert {len(w.audio) for w in other.segments[:-1]} == {4 * 8000}
    assert extract_audio(path, detect(path), None, window_s=None).segments == []


@pytest.mark.parametrize(
    ("name", "codec", "rate"),
    [("a.flac", "flac", 44_100), ("a.ogg", "libopus", 48_000), ("a.m4a", "aac", 22_050)],
)
def test_formats_decode_to_their_duration(tmp_path: Path, name: str, codec: str, rate: int) -> None:
    t = np.arange(3 * rate) / rate
    pcm = (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    path = write_audio(tmp_path / name, pcm, rate, codec)
    extracted = extract_audio(path, detect(path), None)
    assert extracted.duration_s == pytest.approx(3.0, abs=0.1)
    assert extracted.metadata["sample_rate"] == rate
    assert extracted.segments[0].sample_rate == rate


def test_a_damaged_packet_is_skipped_not_fatal() -> None:
    """Megamind.avi's first AC3 packet is corrupt: the rest decodes, in its place."""
    path = opencv_clip("Megamind.avi")
    extracted = extract_audio(path, detect(path), None)
    assert extracted.metadata["decode_errors"] == 1
    assert extracted.duration_s == pytest.approx(11.26, abs=0.1)
    assert extracted.segments[-1].end_s == extracted.duration_s


def test_truncated_and_foreign_files_raise(tmp_path: Path, noise: np.ndarray) -> None:
    flac = write_audio(tmp_path / "full.flac", noise, RATE, "flac")
    mp3 = write_audio(tmp_path / "full.mp3", noise, RATE, "libmp3lame")
    m4a = write_audio(tmp_path / "full.m4a", noise, RATE, "aac")
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"ID3\x03" + bytes(range(256)) * 64)
    for path in (flac, mp3, m4a):
        cut = write_truncated(tmp_path / f"cut{path.suffix}", path, keep=0.5)
        with pytest.raises(ExtractError, match=r"truncated|not a readable"):
            extract_audio(cut, detect(path), None)
    with pytest.raises(ExtractError) as raised:
        extract_audio(garbage, detect(mp3), None)
    assert "\n" not in str(raised.value) and raised.value.stage == "decode"
    with pytest.raises(ExtractError, match="no audio stream"):
        extract_audio(opencv_clip("vtest.avi"), detect(mp3), None)


@pytest.mark.model
def test_sound_windows_embed_with_the_packaged_sound_model(tmp_path: Path) -> None:
    """Windows go through the aisfx embedder as the pipeline sends them: a window of the
    same sound, quieter and at another rate, is nearer than a window of another sound."""
    from mmsearch.embed.aisfx import AisfxEmbedder
    from mmsearch.ingest.embedding import embed_segments

    embedder = AisfxEmbedder()
    t = np.arange(12 * 44_100) / 44_100
    chirps = (0.4 * np.sin(2 * np.pi * (600 + 400 * np.sin(2 * np.pi * t)) * t)).astype(np.float32)
    tone = write_audio(tmp_path / "tone.flac", chirps, 44_100, "flac")
    quiet = write_audio(tmp_path / "quiet.flac", 0.2 * chirps[::2].copy(), 22_050, "flac")
    voice = write_wav(tmp_path / "voice.wav", np.tile(speech(SENTENCE), 8)[: 12 * RATE], RATE)

    segments = [s for p in (tone, quiet, voice) for s in extract_audio(p, detect(p), None).segments]
    vectors = dict(embed_segments(embedder, segments))
    assert len(vectors) == len(segments) == 6  # two windows per 12-s file
    v = np.stack([vectors[i] for i in range(6)])
    assert v.shape == (6, embedder.dim) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    same = float(v[0] @ v[2])
    other = float(v[0] @ v[4])
    assert same > 0.9 and same > other + 0.1, (same, other)
