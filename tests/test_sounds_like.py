"""A word said in a recording or read off a picture is found however the searcher spells it
(issue 18).

Whisper writes a spoken name one way; people type it another ("Catherine", "Kathryn",
"Katherine"). The sounds_like leg matches the Double Metaphone codes of the query's words
against those of transcript words; text documents take part only when asked. OCR reads a
sign's "Harbour"; someone types "harbor": the spelled_like leg (pg_trgm word similarity)
finds it in text read off pictures.

Real parts: espeak-ng speech (skipped with the reason where it is missing), whisper,
MiniLM, the OCR model, the embedded PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest

from mmsearch.client import Client
from mmsearch.errors import UserError
from tests.avmedia import silence, speech, write_wav
from tests.media import write_text_image

pytestmark = pytest.mark.model

RATE = 16_000
SPELLINGS = ("Catherine", "Kathryn", "Katherine")
SAID = "Please call Katherine about the budget before Friday."
TYPED = "Budget notes: ask Kathryn to sign the form."


@pytest.fixture(scope="module")
def corpus(client: Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("sounds")
    said = speech(SAID)
    write_wav(root / "call.wav", _padded(said), RATE)
    (root / "notes.txt").write_text(TYPED)
    client.ingest([root], collection="sounds")
    hidden = tmp_path_factory.mktemp("sounds-hidden")
    write_wav(hidden / "board.wav", _padded(said), RATE)
    client.ingest([hidden], collection="sounds", acl=["group:board"])
    with client.db.reader(["public"]) as conn:  # what whisper wrote
        (transcript,) = conn.execute(
            "SELECT string_agg(s.content, ' ') FROM mmsearch.segment AS s"
            " JOIN mmsearch.record AS r ON r.id = s.record_id"
            " WHERE r.uri LIKE %s AND s.kind = 'transcript'",
            ("%call.wav",),
        ).fetchone()
    # a spelling of the name that whisper did not write (nor the typed notes hold)
    other = next(
        (s for s in SPELLINGS if s.lower() not in f"{transcript} {TYPED}".lower()),
        next(s for s in SPELLINGS if s.lower() not in transcript.lower()),
    )
    return {"transcript": transcript, "other": other}


def _padded(samples: np.ndarray) -> np.ndarray:
    return np.concatenate([silence(0.5), samples, silence(1.0)])


def names(client: Client, query: str, **options: object) -> list[str]:
    hits = client.search(query, collection="sounds", mode="keyword", principals=["public"],
                         rerank=False, **options)  # fmt: skip
    return [Path(h.uri).name for h in hits]


def test_every_spelling_of_a_spoken_name_finds_the_recording(
    client: Client, corpus: dict[str, str]
) -> None:
    written = [s for s in SPELLINGS if s.lower() in corpus["transcript"].lower()]
    for spelling in SPELLINGS:
        assert "call.wav" in names(client, spelling), (spelling, corpus["transcript"])
    # without the leg, only the spelling whisper happened to write finds it
    found_as_written = [s for s in SPELLINGS if "call.wav" in names(client, s, sounds_like="off")]
    assert found_as_written == written, corpus["transcript"]
    assert len(found_as_written) < len(SPELLINGS)


def test_the_hit_marks_the_word_that_sounded_alike(client: Client, corpus: dict) -> None:
    other = corpus["other"]
    hits = client.search(other, collection="sounds", mode="keyword", principals=["public"],
                         rerank=False)  # fmt: skip
    hit = next(h for h in hits if h.uri.endswith("call.wav"))
    assert set(hit.ranks) == {"sounds_like"}
    assert "«" in (hit.snippet or ""), hit.snippet


def test_text_documents_take_part_only_when_asked(client: Client, corpus: dict) -> None:
    assert "notes.txt" not in names(client, "Catherine")
    assert "notes.txt" in names(client, "Catherine", sounds_like="all")
    # a word held as written gains nothing twice: the typed "Kathryn" is a keyword hit only
    hits = client.search("Kathryn", collection="sounds", mode="keyword", sounds_like="all",
                         principals=["public"], rerank=False)  # fmt: skip
    notes = next(h for h in hits if h.uri.endswith("notes.txt"))
    assert set(notes.ranks) == {"keyword"}


def test_operators_mean_what_they_say(client: Client, corpus: dict) -> None:
    other = corpus["other"]
    assert "call.wav" not in names(client, f'"{other}"')
    assert "call.wav" not in names(client, f"{other} -budget")


def test_hidden_recordings_stay_hidden(client: Client, corpus: dict) -> None:
    assert "board.wav" not in names(client, corpus["other"])
    board = client.search(corpus["other"], collection="sounds", mode="keyword",
                          principals=["group:board"], rerank=False)  # fmt: skip
    assert "board.wav" in [Path(h.uri).name for h in board]


def test_the_leg_is_weighed_and_checked_like_the_others(client: Client, corpus: dict) -> None:
    other = corpus["other"]
    hybrid = client.search(other, collection="sounds", principals=["public"], rerank=False)
    muted = client.search(other, collection="sounds", principals=["public"],
                          weights={"sounds_like": 0}, rerank=False)  # fmt: skip
    call = {Path(h.uri).name: h.score for h in hybrid}["call.wav"]
    call_muted = {Path(h.uri).name: h.score for h in muted}.get("call.wav", 0.0)
    assert call > call_muted
    with pytest.raises(UserError, match="sounds_like"):
        client.search("Catherine", collection="sounds", sounds_like="loud")  # type: ignore[arg-type]
    statement = (
        "SELECT h.uri FROM mmsearch.search(query => %s, collections => ARRAY['sounds'],"
        " sounds_like => %s) AS h"
    )
    with client.db.reader(["public"]) as conn:  # the SQL function, as analysts call it
        by_sound = [uri for (uri,) in conn.execute(statement, (other, "speech")).fetchall()]
        off = [uri for (uri,) in conn.execute(statement, (other, "off")).fetchall()]
    assert [Path(uri).name for uri in by_sound][:1] == ["call.wav"]
    assert not any(uri.endswith("call.wav") for uri in off)


@pytest.fixture(scope="module")
def sign(client: Client, tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("sign")
    write_text_image(root / "sign.png", ["Harbour closed", "until Monday"])
    (root / "ferry.txt").write_text("The ferry leaves the Harbour at noon.")
    client.ingest([root], collection="sign")


def sign_hits(client: Client, query: str) -> dict[str, set[str]]:
    hits = client.search(query, collection="sign", mode="keyword", segments=True, rerank=False)
    return {f"{Path(h.uri).name}:{h.kind}": set(h.ranks) for h in hits}


def test_a_word_spelled_otherwise_finds_the_text_in_a_picture(client: Client, sign: None) -> None:
    assert sign_hits(client, "harbor") == {"sign.png:ocr": {"spelled_like"}}
    # as written: the keyword leg alone; in web-search syntax: nothing approximate
    assert sign_hits(client, "harbour") == {
        "sign.png:ocr": {"keyword"},
        "ferry.txt:chunk": {"keyword"},
    }
    assert sign_hits(client, '"harbor"') == {}


def test_sound_codes_keep_no_planner_statistics(dsn: str, corpus: dict) -> None:
    """They describe hidden rows too, and EXPLAIN's estimates would tell how common a sound is
    in recordings the caller may not hear (as for content_tsv, migration 0004)."""
    with psycopg.connect(dsn) as conn:  # the owner: pg_stats hides tables under RLS
        conn.execute("ANALYZE mmsearch.segment")
        analysed = {
            name
            for (name,) in conn.execute(
                "SELECT a.attname FROM pg_catalog.pg_statistic AS st"
                " JOIN pg_catalog.pg_attribute AS a"
                " ON a.attrelid = st.starelid AND a.attnum = st.staattnum"
                " WHERE st.starelid = 'mmsearch.segment'::regclass"
            ).fetchall()
        }
    assert "kind" in analysed and "sound_tsv" not in analysed, analysed
