"""The text→speech, sound→sound and text→sound sets, built from their Debian sources.

Sources come from the Debian cache (downloaded once); no model is loaded.
"""

from __future__ import annotations

import json
import re
import string
import wave
from pathlib import Path

import pytest

from bench.evalsets import sounds, speech, words
from bench.evalsets.fetch import DataUnavailable
from mmsearch.eval.judged import JudgedSet
from tests.avmedia import CACHE

EVAL_CACHE = CACHE / "eval"


@pytest.fixture(scope="module")
def speech_sets() -> dict[bool, JudgedSet]:
    try:
        return {quick: speech.build(EVAL_CACHE, quick=quick)[0] for quick in (False, True)}
    except DataUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def sound_sets() -> dict[str, JudgedSet]:
    try:
        return {s.name: s for s in sounds.build(EVAL_CACHE)}
    except DataUnavailable as exc:
        pytest.skip(str(exc))


def normalised(text: str) -> str:
    kept = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(kept.split())


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def test_speech_ids_are_opaque_and_stable(speech_sets: dict[bool, JudgedSet]) -> None:
    names = speech.transcripts(EVAL_CACHE)
    compound = [n for n in names if "-" in n or "/" in n]
    for judged in speech_sets.values():
        for doc, path in judged.documents.items():
            assert re.fullmatch(r"rec-[0-9a-f]{16}", doc)
            assert path.name == f"{doc}.wav"
        texts = [q.text or "" for q in judged.queries]
        assert len({q.qid for q in judged.queries}) == len(judged.queries)
        for name in compound:
            assert not any(name in t or name.replace("-", " ") in t for t in texts), name
    again = speech.build(EVAL_CACHE, quick=True)[0]
    assert sorted(again.documents) == sorted(speech_sets[True].documents)


def test_speech_spans_lie_in_the_recordings(speech_sets: dict[bool, JudgedSet]) -> None:
    for judged in speech_sets.values():
        lengths = {doc: wav_seconds(path) for doc, path in judged.documents.items()}
        assert all(25.0 <= s <= 100.0 for s in lengths.values()), lengths
        for query in judged.queries:
            assert query.relevant, query.text
            for j in query.relevant:
                assert j.span is not None and 0.0 <= j.span[0] < j.span[1] <= lengths[j.doc]


def test_speech_queries_paraphrase(speech_sets: dict[bool, JudgedSet]) -> None:
    """No query is a transcript, or a stretch of one, word for word."""
    said = [normalised(t) for t in speech.transcripts(EVAL_CACHE).values()]
    for query in speech_sets[False].queries:
        text = normalised(query.text or "")
        assert not any(text in t for t in said), query.text


def test_speech_sizes(speech_sets: dict[bool, JudgedSet]) -> None:
    full, quick = speech_sets[False], speech_sets[True]
    assert 12 <= len(full.documents) <= 20 and len(full.queries) == len(speech.QUERIES)
    assert len(quick.documents) <= 5 and len(quick.queries) == 15


def test_word_set_judges_every_place_a_query_word_is_said() -> None:
    """Each one-word query is judged at every prompt of its recordings that says the word,
    and no other prompt there says it (nor a longer word starting with it)."""
    try:
        judged = words.build(EVAL_CACHE, quick=False)[0]
    except DataUnavailable as exc:
        pytest.skip(str(exc))
    assert [q.text for q in judged.queries] == list(words.WORDS)
    placed = json.loads((EVAL_CACHE / words.NAME / "full" / "layout.json").read_text())
    for query in judged.queries:
        said = words.says_none_of((query.text or "",))
        where = {
            (doc, tuple(p["span"])) for doc, parts in placed.items() for p in parts
            if said.search(p["text"])
        }  # fmt: skip
        assert where == {(j.doc, j.span) for j in query.relevant}, query.text
        for j in query.relevant:
            assert j.span is not None and j.span[1] - j.span[0] < 1.5
    lengths = [wav_seconds(path) for path in judged.documents.values()]
    assert 12 <= len(lengths) <= 20 and all(15.0 <= s <= 60.0 for s in lengths), lengths


def test_sound_sets(sound_sets: dict[str, JudgedSet]) -> None:
    by_example, by_text = sound_sets[sounds.SOUND_SOUND], sound_sets[sounds.TEXT_SOUND]
    assert len(by_example.documents) == 27 and by_text.reuses == by_example.name
    folders = {path.parent for path in by_example.documents.values()}
    for doc, path in by_example.documents.items():
        assert re.fullmatch(r"snd-[0-9a-f]{16}", doc) and path.name == f"{doc}.oga"
    for query in by_example.queries:
        assert query.example is not None and query.example.is_file()
        assert query.example.parent not in folders
        assert re.fullmatch(r"ex-[0-9a-f]{16}\.wav", query.example.name)
        assert [j.grade for j in query.relevant].count(2) == 1
    events = [e for e in sounds.clips(EVAL_CACHE) if "-" in e]  # "a bell" may say bell
    for query in by_text.queries:
        assert query.relevant and query.text
        assert not any(e in query.text or e.replace("-", " ") in query.text for e in events)
    for judged in sound_sets.values():
        assert len({q.qid for q in judged.queries}) == len(judged.queries)
        assert all(j.doc in judged.documents for q in judged.queries for j in q.relevant)


def test_sound_quick_perturbs_each_clip_once() -> None:
    try:
        quick = sounds.build(EVAL_CACHE, quick=True)[0]
    except DataUnavailable as exc:
        pytest.skip(str(exc))
    assert len(quick.queries) == len(quick.documents)
    assert all(q.example is not None and q.example.is_file() for q in quick.queries)
