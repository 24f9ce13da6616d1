"""Search options are checked where they are given, with one-line errors.

Regressions of issue 11 (findings 10 and 12) and issue 12 (item 4): a 66 KB keyword query
ran for minutes, `media_types="text"` was read as the media types t, e, x, t, `rrf_k=-1`
divided by zero, `k=True` reached PostgreSQL as a boolean, NaN weights ranked first, and a
misspelt option surfaced as a TypeError of an inner function. Keyword searches only: no
model is needed, so these run in a second.
"""

from __future__ import annotations

import time

import pytest

from mmsearch.client import Client
from mmsearch.errors import UserError
from mmsearch.query.request import SearchOptions

DOCS = {
    "/opts/a.txt": ("text", "apples and pears grow in the orchard"),
    "/opts/b.png": ("image", "a photo of apples on a table"),
    "/opts/c.wav": ("audio", "someone talks about apples"),
}


@pytest.fixture(scope="module")
def corpus(client: Client) -> None:
    with client.db.writer() as conn:
        collection = conn.execute(
            "INSERT INTO mmsearch.collection (name) VALUES ('opts') RETURNING id"
        ).fetchone()[0]
        for i, (uri, (media_type, text)) in enumerate(DOCS.items()):
            record = conn.execute(
                "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes)"
                " VALUES (%s, %s, %s, %s, 'x/y', 1) RETURNING id",
                (collection, uri, f"{i:064x}", media_type),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO mmsearch.segment (record_id, collection_id, ordinal, kind, content)"
                " VALUES (%s, 0, 0, 'chunk', %s)",
                (record, text),
            )


def keyword(client: Client, query: str = "apples", **options: object) -> list[str]:
    options = {"mode": "keyword", **options}
    return [hit.uri for hit in client.search(query, **options)]  # type: ignore[arg-type]


def test_a_huge_keyword_query_is_refused_at_once(client: Client, corpus: None) -> None:
    started = time.monotonic()
    with pytest.raises(UserError, match="longer than 2000 characters"):
        keyword(client, "apples pears " * 6000)
    assert time.monotonic() - started < 10


def test_too_many_distinct_words_are_refused(client: Client, corpus: None) -> None:
    words = " ".join(f"word{i}x" for i in range(40))
    with pytest.raises(UserError, match="at most 32 distinct words; this query has 40"):
        keyword(client, words)


def test_a_string_where_a_list_goes_is_one_item(client: Client, corpus: None) -> None:
    assert keyword(client, media_types="text") == ["/opts/a.txt"]
    assert set(keyword(client, media_types=["text", "audio"])) == {"/opts/a.txt", "/opts/c.wav"}
    assert keyword(client, collection="opts", tags=[]) != []
    assert keyword(client, principals="public") != []
    with pytest.raises(TypeError, match="media_types must be a string or a sequence"):
        keyword(client, media_types={"text": 1})
    with pytest.raises(TypeError, match="principals"):
        keyword(client, principals=[1])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rrf_k": -1}, "rrf_k must be an integer between 0 and 100000"),
        ({"k": 0}, "k must be an integer between 1 and 1000"),
        ({"k": 1001}, "k must be an integer between 1 and 1000"),
        ({"weights": {"keyword": -1.0}}, "weights must be numbers >= 0"),
        ({"weights": {"keyword": float("nan")}}, "must be a finite number, not nan"),
        ({"weights": {"keyword": float("inf")}}, "must be a finite number, not inf"),
        ({"weights": {"txt": 1.0}}, "weights name no leg: txt"),
        ({"mode": "fuzzy"}, "unknown mode"),
        ({"vector_path": "sideways"}, "vector_path must be auto, exact or hnsw"),
        ({"spaces": ["nope"]}, "cannot search space 'nope': configured and registered are"),
    ],
)
def test_bad_values_are_one_line_user_errors(
    client: Client, corpus: None, options: dict, message: str
) -> None:
    with pytest.raises(UserError, match=message) as caught:
        keyword(client, **options)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"k": True}, "k must be an int, not True"),
        ({"k": 2.0}, "k must be an int"),
        ({"rrf_k": "60"}, "rrf_k must be an int"),
        ({"segments": 1}, "segments must be True or False"),
        ({"weights": {"keyword": True}}, "weights map leg names to numbers"),
        ({"colection": "opts"}, r"search\(\) got an unexpected keyword argument 'colection'"),
    ],
)
def test_wrong_types_and_misspelt_options_are_type_errors(
    client: Client, corpus: None, options: dict, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        keyword(client, **options)


def test_options_are_frozen_and_checked_on_construction() -> None:
    options = SearchOptions(collection="c", tags=("a", "b"), k=5)
    assert (options.collection, options.tags, options.media_types) == (("c",), ("a", "b"), ())
    with pytest.raises(AttributeError):
        options.k = 6  # type: ignore[misc]
    with pytest.raises(UserError, match="bad filter at column"):
        SearchOptions(filter="meta.year >=")
    request = SearchOptions(collection="c", filter="meta.x = 1", weights={"text": 2}).request()
    assert request["collections"] == ["c"] and request["weights"] == {"text": 2.0}
    assert request["filter"] == {"meta": "x", "op": "=", "value": 1}
