"""The Python API and the SQL functions return the same full ranked lists.

Random requests (hypothesis) over a small real corpus (MiniLM text vectors, ConSE image
vectors, OCR, tags, metadata, two collections, a restricted record) go once through
`Client.search` and once through the SQL an analyst would write for the same request:
`mmsearch.search(...)` with the query vectors `mmsearch encode` prints, the filter as its
JSON tree, and, where a request fits them, the shortcuts `keyword_search`, `hybrid_search`
and `more_like_this`. Every hit must agree: record, segment, score, ranks, in order.
Both run as the app role with the same principals, as the API does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from mmsearch.client import Client
from mmsearch.errors import UserError
from mmsearch.query.expression import parse
from tests.media import write_photo, write_text_image

pytestmark = pytest.mark.model

TEXTS = {
    "reset.txt": "Employees who forget their password can reset it from the sign-in page.",
    "kitchen.txt": "Grease fires must never be doused with water: cover the pan with a lid.",
    "espresso.md": "Grind the beans finely and pull a 25 second espresso shot at nine bars.",
    "moon.txt": "The Saturn V rocket carried the Apollo 11 crew to the Moon in July 1969.",
    "garden.txt": "Water tomatoes at the root in the morning and mulch to keep the soil moist.",
}
QUERIES = ["forgot my password", "a cat", "fire in the kitchen", "coffee", "space rocket"]
FILTERS = [None, 'meta.team = "web"', 'media_type = "image" or tags has "b"', "not has meta.x"]
SPACES = ("text", "image")
EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def corpus(client: Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("agree")
    for name, text in TEXTS.items():
        (root / name).write_text(text)
    write_photo(root / "cat.jpg", "chelsea")
    write_photo(root / "rocket.jpg", "rocket")
    write_text_image(root / "slide.png", ["Kitchen fire drill", "every Friday"])
    client.ingest([root], collection="a", tags=["a"], metadata={"team": "web"})
    other = tmp_path_factory.mktemp("agree-b")
    write_photo(other / "coffee.jpg", "coffee")
    (other / "night.txt").write_text("Astronauts sleep in bags tied to the wall of the cabin.")
    client.ingest([other], collection="b", tags=["b"], metadata={"team": "ops"})
    secret = tmp_path_factory.mktemp("agree-secret")
    (secret / "plan.txt").write_text("The secret password of the rocket vault is espresso.")
    client.ingest([secret], collection="a", acl=["group:board"])
    vectors = {
        query: {
            space: client.embedder(space).encode_texts([query], query=True)[0].tolist()
            for space in SPACES
        }
        for query in QUERIES
    }
    with client.db.transaction() as conn:
        segments = [row[0] for row in conn.execute("SELECT id FROM mmsearch.segment")]
    return {"vectors": vectors, "segments": segments}


requests = st.fixed_dictionaries(
    {
        "query": st.sampled_from(QUERIES),
        "mode": st.sampled_from(["hybrid", "vector", "keyword"]),
        "k": st.integers(1, 12),
        "segments": st.booleans(),
        "principals": st.sampled_from([[], ["group:board"]]),
        "rrf_k": st.integers(0, 100),
        "weights": st.fixed_dictionaries(
            {}, optional={"text": st.sampled_from([0.0, 0.5, 2.0]),
                          "keyword": st.sampled_from([0.0, 3.0])}
        ),
    },
    optional={
        "collection": st.sampled_from(["a", "b"]),
        "media_types": st.sampled_from([["text"], ["image", "text"]]),
        "tags": st.sampled_from([["a"], ["b"]]),
        "metadata": st.just({"team": "web"}),
        "filter": st.sampled_from([f for f in FILTERS if f]),
        "spaces": st.sampled_from([["text"], ["image"]]),
        "fusion": st.sampled_from(["relative", "rrf"]),
    },
)  # fmt: skip


def shown(hits: list[Any]) -> list[tuple]:
    """What must agree, hit by hit (scores to 12 digits: both are float8 sums)."""
    return [
        (h["record_id"], h["segment_id"], round(h["score"], 12), dict(h["ranks"])) for h in hits
    ]


def api(client: Client, spec: dict[str, Any]) -> list[tuple]:
    hits = client.search(spec["query"], **{k: v for k, v in spec.items() if k != "query"})
    return shown([hit.as_dict() for hit in hits])


def analyst_sql(corpus: dict[str, Any], spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`mmsearch.search(...)` as an analyst writes it for the same request."""
    spaces = spec.get("spaces", SPACES)
    args: dict[str, Any] = {
        "query": None if spec["mode"] == "vector" else spec["query"],
        "vectors": None
        if spec["mode"] == "keyword"
        else Jsonb({s: corpus["vectors"][spec["query"]][s] for s in spaces}),
        "k": spec["k"],
        "segments": spec["segments"],
        "collections": [spec["collection"]] if "collection" in spec else None,
        "media_types": spec.get("media_types"),
        "tags": spec.get("tags"),
        "metadata": Jsonb(spec["metadata"]) if "metadata" in spec else None,
        "filter": Jsonb(parse(spec["filter"]).to_json()) if "filter" in spec else None,
        "rrf_k": spec["rrf_k"],
        "weights": Jsonb(spec["weights"]) if spec["weights"] else None,
        "fusion": spec.get("fusion"),
    }
    casts = {"vectors": "jsonb", "metadata": "jsonb", "filter": "jsonb", "weights": "jsonb",
             "collections": "text[]", "media_types": "text[]", "tags": "text[]",
             "fusion": "text"}  # fmt: skip
    call = ", ".join(f"{name} => %({name})s::{casts.get(name, 'text')}" for name in casts)
    statement = (
        "SELECT * FROM mmsearch.search(query => %(query)s, k => %(k)s,"
        f" segments => %(segments)s, rrf_k => %(rrf_k)s, {call})"
    )
    return statement, args


def sql(client: Client, principals: list[str], statement: str, args: Any) -> list[dict]:
    with client.db.reader(principals) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(statement, args).fetchall()


@given(spec=requests)
@EXAMPLES
def test_search_and_mmsearch_search_agree(
    client: Client, corpus: dict[str, Any], spec: dict[str, Any]
) -> None:
    expected = api(client, spec)
    statement, args = analyst_sql(corpus, spec)
    assert shown(sql(client, spec["principals"], statement, args)) == expected


@given(
    query=st.sampled_from(QUERIES),
    k=st.integers(1, 12),
    collection=st.sampled_from([None, "a", "b"]),
    principals=st.sampled_from([[], ["group:board"]]),
)
@EXAMPLES
def test_the_shortcuts_agree_with_the_api(
    client: Client,
    corpus: dict[str, Any],
    query: str,
    k: int,
    collection: str | None,
    principals: list[str],
) -> None:
    options = {"k": k, "collection": collection, "principals": principals}
    keyword = api(client, {"query": query, "mode": "keyword", **options})
    rows = sql(
        client, principals, "SELECT * FROM mmsearch.keyword_search(%s, %s, %s)",
        (query, collection, k),
    )  # fmt: skip
    assert [(r["record_id"], r["segment_id"]) for r in rows] == [h[:2] for h in keyword]
    hybrid = api(  # the shortcut's fusion: reciprocal ranks, rrf_k 60
        client, {"query": query, "mode": "hybrid", "spaces": ["text"], "fusion": "rrf", **options}
    )
    vector = np.asarray(corpus["vectors"][query]["text"], dtype=np.float32)
    rows = sql(
        client, principals, "SELECT * FROM mmsearch.hybrid_search(%s, %s, 'text', %s, %s)",
        (query, vector, collection, k),
    )  # fmt: skip
    assert [(r["record_id"], r["segment_id"], round(r["score"], 12)) for r in rows] == [
        h[:3] for h in hybrid
    ]


@given(
    index=st.integers(0, 1000),
    k=st.integers(1, 8),
    collection=st.sampled_from([None, "a", "b"]),
    principals=st.sampled_from([[], ["group:board"]]),
)
@EXAMPLES
def test_more_like_this_agrees_with_the_api(
    client: Client,
    corpus: dict[str, Any],
    index: int,
    k: int,
    collection: str | None,
    principals: list[str],
) -> None:
    segment = corpus["segments"][index % len(corpus["segments"])]
    spec = {"query": segment, "k": k, "collection": collection, "principals": principals}
    try:
        expected: list[Any] = [h[:2] for h in api(client, {**spec, "spaces": ["text"]})]
    except UserError as exc:  # a segment the caller may not see: both say so, alike
        expected = [str(exc)]
    try:
        rows = sql(
            client, principals, "SELECT * FROM mmsearch.more_like_this(%s, 'text', %s, %s)",
            (segment, k, collection),
        )  # fmt: skip
        found: list[Any] = [(r["record_id"], r["segment_id"]) for r in rows]
    except psycopg.errors.NoDataFound as exc:
        found = [exc.diag.message_primary]
    assert found == expected


def test_the_random_requests_cover_every_leg(client: Client, corpus: dict[str, Any]) -> None:
    """The corpus answers typed queries through all three legs (so agreement means something)."""
    legs = {
        leg
        for query in QUERIES
        for hit in client.search(query, k=12, segments=True)
        for leg in hit.ranks
    }
    assert legs == {"text", "image", "keyword"}
