"""The keyword leg ranks by BM25 over what the caller may see, and the default fusion does
not let a keyword match on part of the query outvote the clear best vector match (issue 18).

Real parts: the embedded PostgreSQL, MiniLM for the text space.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsearch.client import Client
from mmsearch.errors import UserError

pytestmark = pytest.mark.model

TEXTS = {
    # "report" is common here and said twice in one document; "glacier" is rare
    "weekly.txt": "The report cites an earlier report on staffing.",
    "monthly.txt": "The monthly report is late again.",
    "filed.txt": "Another report was filed on Tuesday.",
    "ice.txt": "The glacier melted faster this summer.",
    # the demo's pair: only the rocket page shares a word ("fly") with the query below
    "travel.txt": "Travel expenses policy. Book trains for trips under 600 km; flights need a"
    " manager's approval. Hotels up to 140 EUR a night in capitals.",
    "rockets.txt": "A short history of rockets: how engineers learned to make machines fly"
    " beyond the atmosphere, from Goddard's first liquid-fuelled launch to Apollo.",
}
HIDDEN = "A glacier, a glacier and another glacier: glacier survey notes."


@pytest.fixture(scope="module")
def corpus(client: Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bm25")
    for name, text in TEXTS.items():
        (root / name).write_text(text)
    client.ingest([root], collection="bm25")
    return root


def keyword_hits(client: Client, query: str) -> dict[str, float]:
    hits = client.search(query, collection="bm25", mode="keyword", k=10, principals=["public"])
    return {Path(h.uri).name: h.leg_scores["keyword"] for h in hits}


def test_a_rare_word_outranks_a_common_word_said_twice(client: Client, corpus: Path) -> None:
    hits = client.search("report glacier", collection="bm25", mode="keyword", k=10)
    ranked = [Path(h.uri).name for h in hits]
    assert ranked[0] == "ice.txt", ranked  # ts_rank_cd put weekly.txt (two "report"s) first
    assert set(ranked) == {"ice.txt", "weekly.txt", "monthly.txt", "filed.txt"}
    # more of a word still counts for more: weekly.txt above the other "report" documents
    assert ranked[1] == "weekly.txt"


def test_term_statistics_leave_out_rows_the_caller_cannot_see(
    client: Client, corpus: Path, tmp_path: Path
) -> None:
    """Statistics over every row would let scores tell whether hidden rows hold a word."""
    before = keyword_hits(client, "report glacier")
    hidden = tmp_path / "survey.txt"
    hidden.write_text(HIDDEN)
    client.ingest([hidden], collection="bm25", acl=["group:board"])
    try:
        assert keyword_hits(client, "report glacier") == pytest.approx(before)
        board = client.search(
            "report glacier", collection="bm25", mode="keyword", principals=["group:board"]
        )
        # the board sees the survey, and "glacier" is now commoner for it: a lower score
        scores = {Path(h.uri).name: h.leg_scores["keyword"] for h in board}
        assert "survey.txt" in scores
        assert scores["ice.txt"] < before["ice.txt"]
    finally:
        client.remove([hidden], collection="bm25")


def test_a_partial_keyword_match_does_not_outvote_the_best_vector_match(
    client: Client, corpus: Path
) -> None:
    query = "can I fly to a conference"
    vector = client.search(query, collection="bm25", mode="vector", k=3)
    keyword = client.search(query, collection="bm25", mode="keyword", k=3)
    assert Path(vector[0].uri).name == "travel.txt"
    assert [Path(h.uri).name for h in keyword] == ["rockets.txt"]
    hybrid = client.search(query, collection="bm25", k=3)
    assert Path(hybrid[0].uri).name == "travel.txt"
    # rank fusion counts the keyword hit's first place in full and gets it wrong
    rrf = client.search(query, collection="bm25", k=3, fusion="rrf")
    assert Path(rrf[0].uri).name == "rockets.txt"


def test_relative_scores_are_on_a_fixed_scale(client: Client, corpus: Path) -> None:
    hits = client.search("glacier melted this summer", collection="bm25", k=10)
    assert Path(hits[0].uri).name == "ice.txt"
    assert hits[0].ranks == {"text": 1, "keyword": 1}
    assert all(0.0 <= h.score <= 2.0 for h in hits)  # two legs, each on 0..1
    assert hits[0].score > 1.0  # the best of both legs: 1 from the vector leg, more from BM25


def test_an_unknown_fusion_is_refused(client: Client, corpus: Path) -> None:
    with pytest.raises(UserError, match="unknown fusion 'borda'"):
        client.search("glacier", fusion="borda")  # type: ignore[arg-type]
    with client.db.reader(("public",)) as conn, pytest.raises(Exception, match="fusion must be"):
        conn.execute("SELECT * FROM mmsearch.search('glacier', fusion => 'borda')")


def test_collection_defaults_name_real_legs(client: Client, corpus: Path) -> None:
    """Kept defaults that named no leg would make every later search of it fail."""
    with pytest.raises(UserError, match="weights name no leg: texxt"):
        client.set_search_defaults("bm25", fusion="rrf", weights={"texxt": 2.0})
    assert client.search("glacier", collection="bm25", k=1)  # nothing was kept
