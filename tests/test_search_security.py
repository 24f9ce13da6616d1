"""The SECURITY DEFINER search returns exactly what row-level security lets the caller see.

`mmsearch.search_request` runs as a role that reads every row (so the planner may use the
GIN indexes and their statistics) and applies the callers' policy predicate itself. Here
random callers and random requests over a world of records with random ACLs check that:
every hit is a row the same caller can SELECT under RLS; a search that asks for everything
finds every visible row that matches, none hidden; the statement `--explain` prints, run by
the caller (RLS applying), returns the same ranked list; hostile arguments are values, never
SQL; and EXPLAIN ANALYZE of the search by an analyst shows nothing that depends on rows the
analyst may not see, apart from time and buffer counts (see docs/sql.md, "What RLS changes").
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from mmsearch.db.engine import Database
from mmsearch.spaces import register_space
from tests.logins import person_dsn

GROUPS = ["group:g0", "group:g1", "group:g2", "group:g3"]
WORDS = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "heron"]
HIDDEN_WORD = "zircon"  # only in records no principal of the tests below holds
DIM = 8


@dataclass(frozen=True)
class World:
    principals: list[list[str]]  # callers to try


@pytest.fixture(scope="module")
def world(db: Database) -> World:
    rng = random.Random(11)
    with db.transaction() as conn:
        register_space(
            conn, "sec", modalities=["text"], model_id="synthetic", revision="1", dim=DIM,
            distance="cosine",
        )  # fmt: skip
        collections = [
            conn.execute(
                "INSERT INTO mmsearch.collection (name) VALUES (%s) RETURNING id", (name,)
            ).fetchone()[0]
            for name in ("east", "west")
        ]
        for i in range(400):
            acl = rng.sample([*GROUPS, "public", "group:secret"], rng.randint(1, 2))
            record = conn.execute(
                "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes,"
                " metadata, tags, acl) VALUES (%s, %s, %s, %s, 'x/y', 1, %s, %s, %s) RETURNING id",
                (rng.choice(collections), f"/w/{i}", f"{i:064x}", rng.choice(["text", "audio"]),
                 Jsonb({"k": rng.randint(0, 4)}), rng.sample(WORDS, 2), acl),
            ).fetchone()[0]  # fmt: skip
            for ordinal in range(rng.randint(1, 3)):
                words = rng.sample(WORDS, 3) + ([HIDDEN_WORD] if acl == ["group:secret"] else [])
                vector = np.asarray([rng.gauss(0, 1) for _ in range(DIM)], dtype=np.float32)
                conn.execute(
                    "INSERT INTO mmsearch.segment (record_id, collection_id, ordinal, kind,"
                    " start_s, content, sec_vec) VALUES (%s, 0, %s, 'chunk', %s, %s, %s)",
                    (record, ordinal, float(ordinal * 10), " ".join(words), vector),
                )
        conn.execute("ANALYZE mmsearch.record, mmsearch.segment")
    return World([[], ["group:g0"], ["group:g1", "group:g2"], GROUPS, ["user:nobody"]])


requests = st.fixed_dictionaries(
    {"query": st.sampled_from([*WORDS, f"{WORDS[0]} {WORDS[1]}", HIDDEN_WORD])},
    optional={
        "vectors": st.just({"sec": [0.5, -1.0, 0.25, 2.0, -0.5, 1.0, 0.0, -2.0]}),
        "collections": st.sampled_from([["east"], ["west"], ["east", "west"]]),
        "media_types": st.sampled_from([["text"], ["audio"]]),
        "tags": st.lists(st.sampled_from(WORDS), min_size=1, max_size=2),
        "metadata": st.integers(0, 4).map(lambda k: {"k": k}),
        "filter": st.sampled_from(
            [
                {"column": "start_s", "op": ">=", "value": 10},
                {"not": {"has_meta": "k"}},
                {"or": [{"meta": "k", "op": "<", "value": 2}, {"tags": ["amber"], "all": True}]},
            ]
        ),
        "segments": st.booleans(),
        "k": st.integers(1, 30),
        "vector_path": st.sampled_from(["auto", "exact", "hnsw"]),
    },
)


@contextmanager
def caller(db: Database, principals: list[str]) -> Iterator[psycopg.Connection]:
    with db.reader(principals) as conn:
        conn.row_factory = dict_row
        try:
            yield conn
        finally:
            conn.row_factory = psycopg.rows.tuple_row  # the pool hands it on


def search(conn: psycopg.Connection, request: dict) -> list[dict]:
    return conn.execute("SELECT * FROM mmsearch.search_request(%s)", (Jsonb(request),)).fetchall()


@given(request=requests, who=st.integers(0, 4))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_hits_are_visible_and_the_printed_sql_agrees(
    db: Database, world: World, request: dict, who: int
) -> None:
    with caller(db, world.principals[who]) as conn:
        hits = search(conn, request)
        segments = [hit["segment_id"] for hit in hits]
        seen = conn.execute(  # RLS decides
            "SELECT count(*) AS n FROM mmsearch.segment AS s JOIN mmsearch.record AS r"
            " ON r.id = s.record_id WHERE s.id = ANY (%s)",
            (segments,),
        ).fetchone()["n"]
        assert seen == len(segments)
        printed = conn.execute(
            "SELECT * FROM mmsearch.search_statement(%s)", (Jsonb(request),)
        ).fetchone()
        retried = len(hits) < request.get("k", 10)  # search_request may have widened it
        if not retried:
            conn.execute(
                "SELECT set_config(key, value, true) FROM jsonb_each_text(%s)",
                (Jsonb(printed["settings"]),),
            )
            pasted = conn.execute(psycopg.sql.SQL(printed["statement"])).fetchall()
            assert [(r["segment_id"], r["score"]) for r in pasted] == [
                (h["segment_id"], h["score"]) for h in hits
            ]


@pytest.mark.parametrize("who", range(5))
def test_asking_for_everything_finds_every_visible_match_and_nothing_else(
    db: Database, world: World, who: int
) -> None:
    request = {"query": "amber or zircon", "segments": True, "k": 1000}
    with caller(db, world.principals[who]) as conn:
        found = {hit["segment_id"] for hit in search(conn, request)}
        visible = {
            row["id"]
            for row in conn.execute(
                "SELECT id FROM mmsearch.segment"
                " WHERE content_tsv @@ websearch_to_tsquery('english', 'amber or zircon')"
            )
        }
        vectors = {
            hit["segment_id"]
            for hit in search(
                conn,
                {
                    "vectors": {"sec": [1.0] * DIM},
                    "segments": True,
                    "k": 1000,
                    "vector_path": "exact",
                },
            )
        }
        with_vectors = {row["id"] for row in conn.execute("SELECT id FROM mmsearch.segment")}
    assert found == visible and found
    assert vectors == with_vectors


HOSTILE = [
    "'", '"', "\\", "'; DROP TABLE mmsearch.record; --", '"); DELETE FROM mmsearch.segment; --',
    "$$; SELECT 1; $$", "%s %(x)s {x}", "r.acl", "s.id) OR (true", "*/ /*", "ünï ☃",
]  # fmt: skip
hostile = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30).filter(lambda s: "\0" not in s))


@given(
    text=hostile,
    field=st.sampled_from(
        [
            "vectors",
            "weights",
            "collections",
            "media_types",
            "tags",
            "tags_all",
            "metadata",
            "meta",
            "column",
            "op",
            "has_meta",
            "spaces",
            "query",
            "ingested_after",
        ]
    ),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_hostile_arguments_are_values_never_sql(
    db: Database, world: World, text: str, field: str
) -> None:
    request: dict = {"query": "amber", "k": 5}
    request.update({
        "vectors": {"vectors": {text: [1.0] * DIM}},
        "weights": {"weights": {text: 1.0}},
        "metadata": {"metadata": {text: text}},
        "meta": {"filter": {"meta": text, "op": "<", "value": text}},
        "column": {"filter": {"column": text, "op": "=", "value": text}},
        "op": {"filter": {"meta": "k", "op": text, "value": 1}},
        "has_meta": {"filter": {"has_meta": text}},
        "query": {"query": text or "x"},
        "ingested_after": {"ingested_after": text},
    }.get(field, {field: [text]}))  # fmt: skip
    with caller(db, ["group:g0"]) as conn:
        try:
            with conn.transaction():  # a savepoint: a refused request leaves the rest usable
                hits = search(conn, request)
        except psycopg.Error as exc:
            # a refusal of the value (22xxx: bad value, P0002), never broken or foreign SQL
            assert exc.sqlstate[:2] == "22" or exc.sqlstate == "P0002", (exc.sqlstate, exc)
            hits = []
        seen = conn.execute(
            "SELECT count(*) AS n FROM mmsearch.segment WHERE id = ANY (%s)",
            ([hit["segment_id"] for hit in hits],),
        ).fetchone()["n"]
        assert seen == len(hits)
    with db.transaction() as owner:
        assert owner.execute("SELECT count(*) FROM mmsearch.record").fetchone()[0] == 400


def analyst_explain(dsn: str, word: str) -> str:
    """EXPLAIN ANALYZE of a keyword search by an analyst's login (principals: public only),
    without the figures that are time (ms) and buffer counts."""
    with psycopg.connect(person_dsn(dsn, "analyst")) as conn:
        lines = [
            row[0]
            for row in conn.execute(
                "EXPLAIN (ANALYZE, VERBOSE) SELECT * FROM mmsearch.search(query => %s)", (word,)
            )
        ]
    shown = "\n".join(line for line in lines if "Buffers:" not in line).replace(word, "WORD")
    return re.sub(r"\d+\.\d+ ms|time=[\d.]+\.\.[\d.]+", "T", shown)


def test_explain_analyze_by_an_analyst_shows_nothing_of_hidden_rows(dsn: str, world: World) -> None:
    """A word only hidden segments hold and a word no segment holds: the same plan, the
    same row counts (no inner plan, no removed-rows counts), once time and buffers are out."""
    hidden, absent = analyst_explain(dsn, HIDDEN_WORD), analyst_explain(dsn, "quuxword")
    assert "rows=0" in hidden
    assert hidden == absent


def test_definer_functions_are_owned_by_a_plain_role_with_pinned_search_path(
    db: Database,
) -> None:
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT p.proname, p.proconfig, r.rolsuper, r.rolbypassrls, r.rolcanlogin,"
            " has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec"
            " FROM pg_proc AS p JOIN pg_roles AS r ON r.oid = p.proowner"
            " WHERE p.pronamespace = 'mmsearch'::regnamespace AND p.prosecdef"
            " AND p.proname LIKE 'search%'"
        ).fetchall()
    assert {row[0] for row in rows} == {"search_plan", "search_request"}
    for name, config, superuser, bypass, login, public_exec in rows:
        assert "search_path=pg_catalog, public, pg_temp" in config, name
        assert not (superuser or bypass or login or public_exec), name
