"""Migrations up and down, and the catalog facts the rest of the system relies on."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from mmsearch.db import schema
from mmsearch.db.models import Base
from tests.conftest import drop_database, new_database

TABLES = {
    "collection", "space", "record", "segment", "ingest_error", "api_token", "backfill_skip",
    "install", "person", "ingest_lock",
}  # fmt: skip


def catalog_tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'mmsearch'"
        ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture
def fresh_dsn(server_dsn: str) -> Iterator[str]:
    """An empty database of its own: the module's `dsn` upgrades the module's `empty_dsn`,
    which other tests may have done first."""
    dsn = new_database(server_dsn, "cycle")
    yield dsn
    drop_database(server_dsn, dsn)


def test_upgrade_downgrade_upgrade(fresh_dsn: str) -> None:
    assert catalog_tables(fresh_dsn) == set()
    schema.upgrade(fresh_dsn)
    assert catalog_tables(fresh_dsn) == TABLES
    schema.downgrade(fresh_dsn, "base")
    assert catalog_tables(fresh_dsn) == set()
    schema.upgrade(fresh_dsn)
    schema.upgrade(fresh_dsn)  # a second upgrade re-applies sql/ without error
    assert catalog_tables(fresh_dsn) == TABLES


def test_rls_enabled_and_forced(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
            " WHERE relnamespace = 'mmsearch'::regnamespace AND relname IN ('record', 'segment')"
        ).fetchall()
    assert sorted(rows) == [("record", True, True), ("segment", True, True)]


def test_policies_read_the_principals_once_per_query(dsn: str) -> None:
    """On one server the policies hold a scalar subquery (an InitPlan: one call per query);
    only a Citus coordinator gets the plain per-row call (tests/citus)."""
    with psycopg.connect(dsn) as conn:
        quals = conn.execute(
            "SELECT DISTINCT pg_get_expr(polqual, polrelid) FROM pg_policy"
            " WHERE polname = 'visible_to_principals'"
        ).fetchall()
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "EXPLAIN SELECT * FROM mmsearch.record WHERE acl && " + schema.PRINCIPALS_ONCE
            )
        )
    assert len(quals) == 1
    assert quals[0][0].replace("mmsearch.", "") == (
        "(acl && ( SELECT current_principals() AS current_principals))"
    )
    assert "InitPlan" in plan


def test_content_tsv_is_generated_and_indexed(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        generated = conn.execute(
            "SELECT attgenerated FROM pg_attribute"
            " WHERE attrelid = 'mmsearch.segment'::regclass AND attname = 'content_tsv'"
        ).fetchone()
        indexes = dict(
            conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'mmsearch'"
            ).fetchall()
        )
    assert generated == ("s",)
    assert "USING gin (content_tsv)" in indexes["segment_tsv_idx"]
    for name in ("record_tags_idx", "record_metadata_idx", "record_acl_idx", "segment_acl_idx"):
        assert "USING gin" in indexes[name]
    assert "(record_id, start_s, end_s)" in indexes["segment_time_idx"]


def test_constraints_refuse_bad_rows(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO mmsearch.collection (name) VALUES ('bad name; drop')")
        conn.rollback()
        cid = conn.execute(
            "INSERT INTO mmsearch.collection (name) VALUES ('c') RETURNING id"
        ).fetchone()[0]
        insert = (
            "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes)"
            " VALUES (%s, %s, %s, %s, 'text/plain', 1) RETURNING id"
        )
        conn.execute(insert, (cid, "/a", "0" * 64, "text"))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, (cid, "/a", "1" * 64, "text"))
        conn.rollback()
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(insert, (cid, "/b", "0" * 64, "hologram"))
        conn.rollback()


def test_segments_cascade_and_inherit_acl(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        cid = conn.execute(
            "INSERT INTO mmsearch.collection (name) VALUES ('cascade') RETURNING id"
        ).fetchone()[0]
        rid = conn.execute(
            "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes, acl)"
            " VALUES (%s, '/x', %s, 'text', 'text/plain', 1, '{group:eng}') RETURNING id",
            (cid, "0" * 64),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO mmsearch.segment (record_id, collection_id, ordinal, kind, content)"
            " VALUES (%s, 0, 0, 'chunk', 'hello world')",
            (rid,),
        )
        acl, seg_cid = conn.execute(
            "SELECT acl, collection_id FROM mmsearch.segment WHERE record_id = %s", (rid,)
        ).fetchone()
        assert (acl, seg_cid) == (["group:eng"], cid)
        conn.execute("UPDATE mmsearch.record SET acl = '{user:bob}' WHERE id = %s", (rid,))
        assert conn.execute(
            "SELECT acl FROM mmsearch.segment WHERE record_id = %s", (rid,)
        ).fetchone() == (["user:bob"],)
        conn.execute("DELETE FROM mmsearch.record WHERE id = %s", (rid,))
        assert conn.execute(
            "SELECT count(*) FROM mmsearch.segment WHERE record_id = %s", (rid,)
        ).fetchone() == (0,)
        conn.rollback()


def test_orm_models_match_catalog(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        for table in Base.metadata.sorted_tables:
            columns = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = 'mmsearch' AND table_name = %s",
                    (table.name,),
                ).fetchall()
            }
            vector_columns = {c for c in columns if c.endswith("_vec")}
            assert {c.name for c in table.columns} == columns - vector_columns, table.name


def test_connecting_reapplies_sql_files_that_changed(fresh_dsn: str) -> None:
    """A newer package with the same migrations: its functions replace the old ones."""
    from mmsearch.client import Client

    schema.upgrade(fresh_dsn)
    with psycopg.connect(fresh_dsn) as conn:  # an older release's function
        conn.execute(
            "CREATE OR REPLACE FUNCTION mmsearch.search_limits() RETURNS jsonb"
            " LANGUAGE sql IMMUTABLE AS $$ SELECT '{\"max_k\": 5}'::jsonb $$"
        )
        conn.execute("UPDATE mmsearch.install SET sql_digest = 'older'")
    Client.connect(fresh_dsn, upgrade=False).close()  # refuses nothing, changes nothing
    with psycopg.connect(fresh_dsn) as conn:
        assert conn.execute("SELECT mmsearch.search_limits() ->> 'max_k'").fetchone() == ("5",)
    Client.connect(fresh_dsn).close()
    with psycopg.connect(fresh_dsn) as conn:
        assert conn.execute("SELECT mmsearch.search_limits() ->> 'max_k'").fetchone() == ("1000",)
        digest = conn.execute("SELECT sql_digest FROM mmsearch.install").fetchone()[0]
    assert digest == schema.sql_digest()


def test_connect_without_upgrade_refuses_a_database_without_the_schema(
    server_dsn: str,
) -> None:
    from mmsearch.client import Client
    from mmsearch.errors import SchemaMissing
    from tests.conftest import drop_database, new_database

    bare = new_database(server_dsn, "noschema")
    try:
        with pytest.raises(SchemaMissing, match="run mmsearch init"):
            Client.connect(bare, upgrade=False)
    finally:
        drop_database(server_dsn, bare)
