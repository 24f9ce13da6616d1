"""Audio and video through the whole system: ingest a folder, then find the moment.

A typed phrase must land on the right file and the right seconds: speech is generated
with espeak-ng (skipped with a reason where it cannot be installed), the video is
assembled from real photos with a spoken track.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmsearch.client import Client
from tests.avmedia import silence, speech, write_audio, write_video
from tests.media import photo

pytestmark = pytest.mark.model

RATE = 16_000
SIZE = (640, 360)
HARBOUR = "The ferry to the island leaves from the north harbour at noon."
BATTERY = "Replace the smoke detector battery every twelve months."
GARDEN = "Water the tomato plants early in the morning."


@pytest.fixture(scope="module")
def media(client: Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("av")
    harbour, battery = speech(HARBOUR), speech(BATTERY)
    battery_at = 14.0
    talk = np.concatenate(
        [
            silence(2.0),
            harbour,
            silence(battery_at - 2.0 - len(harbour) / RATE),
            battery,
            silence(3.0),
        ]
    )
    write_audio(root / "memo.mp3", talk, RATE, "libmp3lame")
    garden = speech(GARDEN)
    garden_at = 6.4
    pictures = [
        (np.asarray(photo(name).resize(SIZE)), 3.0)
        for name in ("astronaut", "rocket", "chelsea", "coffee")
    ]
    track = np.concatenate([silence(garden_at), garden, silence(12.0)])[: 12 * RATE]
    write_video(root / "clip.mp4", pictures, fps=10, audio=track, rate=RATE)
    good = (root / "memo.mp3").read_bytes()
    (root / "cut.mp3").write_bytes(good[: len(good) // 4])
    (root / "noise.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(4000))
    report = client.ingest([root], collection="av")
    return {
        "root": root,
        "report": report,
        "battery": (battery_at, battery_at + len(battery) / RATE),
        "garden": (garden_at, garden_at + len(garden) / RATE),
    }


def test_folder_ingest_summary(media: dict) -> None:
    report = media["report"]
    assert (report.ingested, report.failed) == (2, 2), report.errors
    assert {Path(e["uri"]).name for e in report.errors} == {"cut.mp3", "noise.mp4"}


def test_typed_phrase_finds_the_moment_in_a_recording(client: Client, media: dict) -> None:
    hits = client.search("when should the smoke alarm battery be changed", collection="av")
    assert Path(hits[0].uri).name == "memo.mp3"
    start, end = media["battery"]
    assert hits[0].kind == "transcript"
    assert hits[0].start_s <= start + 1.0 and hits[0].end_s >= end - 1.0
    assert hits[0].start_s >= start - 3.0


def test_spoken_phrase_in_a_video_lands_on_its_time(client: Client, media: dict) -> None:
    hits = client.search("watering tomatoes", collection="av", media_types=["video"])
    assert Path(hits[0].uri).name == "clip.mp4"
    start, end = media["garden"]
    assert hits[0].start_s <= start + 1.0 and hits[0].end_s >= end - 1.0


def test_typed_description_finds_the_shot_that_shows_it(client: Client, media: dict) -> None:
    hits = client.search("a cat", collection="av", media_types=["video"], segments=True, k=3)
    shot = next(h for h in hits if h.kind == "shot")
    assert shot.start_s == pytest.approx(6.0, abs=0.6)
    assert "image" in shot.ranks


def test_sound_windows_are_embedded_and_more_like_this_works(
    client: Client, media: dict, tmp_path: Path
) -> None:
    """More like a sound window: the same moment of a copy of the recording comes first;
    the window's own recording never comes back (its record is left out, not just it)."""
    with client.db.transaction() as conn:
        windows, with_vec = conn.execute(
            "SELECT count(*), count(sound_vec) FROM mmsearch.segment WHERE kind = 'window'"
        ).fetchone()
        window_id, start_s, record_id = conn.execute(
            "SELECT id, start_s, record_id FROM mmsearch.segment WHERE kind = 'window'"
            " ORDER BY id LIMIT 1 OFFSET 1"
        ).fetchone()
    assert windows > 0 and with_vec == windows
    assert client.search(window_id, collection="av", segments=True, k=5) == []
    (tmp_path / "memo-copy.mp3").write_bytes((media["root"] / "memo.mp3").read_bytes())
    client.ingest([tmp_path], collection="av-copy")
    hits = client.search(window_id, segments=True, k=5)
    assert hits and all(hit.record_id != record_id for hit in hits)
    assert (hits[0].kind, hits[0].start_s) == ("window", start_s)
    assert hits[0].ranks == {"sound": 1}


def test_cli_json_points_at_the_moment(client: Client, media: dict) -> None:
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn}
    out = subprocess.run(
        [sys.executable, "-m", "mmsearch", "search", "ferry to the island", "-c", "av", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    first = json.loads(out.splitlines()[0])
    assert Path(first["uri"]).name == "memo.mp3"
    assert first["start_s"] < 4.0 and first["end_s"] > 2.0
