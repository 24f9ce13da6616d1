"""A hit in a recording carries its moment: the neighbouring segments the search also found.

Two sentences about the harbour said one after the other are one moment; the same words
said again after a long silence are another, and a sentence about something else beside
them is not part of it (issue 18).

Real parts: espeak-ng speech (skipped with the reason where it is missing), whisper,
MiniLM, the embedded PostgreSQL.
"""

from __future__ import annotations

import numpy as np
import pytest

from mmsearch.client import Client
from mmsearch.query.search import Hit
from tests.avmedia import silence, speech, write_wav

pytestmark = pytest.mark.model

RATE = 16_000
FIRST = "The ferry leaves the north harbour at noon."
SECOND = "The harbour ferry comes back at six."
OTHER = "Bring a warm coat and an umbrella."
LATER = "The harbour ferry is cancelled on Sundays."
QUERY = "harbour ferry"


@pytest.fixture(scope="module")
def spans(client: Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    root = tmp_path_factory.mktemp("moments")
    parts, at, spans = [], 0.0, {}
    for name, audio in (
        ("pause", silence(1.0)),
        ("first", speech(FIRST)),
        ("pause", silence(0.8)),
        ("second", speech(SECOND)),
        ("pause", silence(0.8)),
        ("other", speech(OTHER)),
        ("pause", silence(15.0)),
        ("later", speech(LATER)),
        ("pause", silence(1.0)),
    ):
        spans[f"{name}_start"], spans[f"{name}_end"] = at, at + len(audio) / RATE
        parts.append(audio)
        at += len(audio) / RATE
    write_wav(root / "ferry.wav", np.concatenate(parts), RATE)
    (root / "timetable.txt").write_text("Harbour ferry timetable: noon and six, not Sundays.")
    client.ingest([root], collection="moments")
    return spans


def hits(client: Client, **options: object) -> list[Hit]:
    return client.search(QUERY, collection="moments", rerank=False, **options)  # type: ignore[arg-type]


def test_side_by_side_sentences_are_one_moment(client: Client, spans: dict[str, float]) -> None:
    recording = next(h for h in hits(client) if h.uri.endswith("ferry.wav"))
    assert recording.moment_start_s is not None and recording.moment_end_s is not None
    assert recording.start_s is not None and recording.end_s is not None
    # both harbour sentences (whisper's times are within a second of the speech)
    assert recording.moment_start_s <= spans["first_start"] + 1.0
    assert recording.moment_end_s >= spans["second_end"] - 1.0
    assert recording.moment_end_s - recording.moment_start_s > recording.end_s - recording.start_s
    # not the sentence said after a long silence
    assert recording.moment_end_s < spans["later_start"]


def test_each_sentence_hit_names_its_own_moment(client: Client, spans: dict[str, float]) -> None:
    sentences = [h for h in hits(client, segments=True, k=20) if h.uri.endswith("ferry.wav")]
    near = [h for h in sentences if h.start_s is not None and h.start_s < spans["later_start"]]
    later = [h for h in sentences if h.start_s is not None and h.start_s >= spans["later_start"]]
    assert len(near) >= 2 and later
    assert len({(h.moment_start_s, h.moment_end_s) for h in near if h.kind == "transcript"}) == 1
    for hit in later:
        assert hit.moment_start_s is not None and hit.moment_start_s >= spans["other_end"]


def test_text_has_no_moment(client: Client, spans: dict[str, float]) -> None:
    text = next(h for h in hits(client) if h.uri.endswith("timetable.txt"))
    assert (text.moment_start_s, text.moment_end_s) == (None, None)
