"""`mmsearch init`'s schema on a Citus coordinator: what is distributed, what still works.

The migrations run unchanged; `mmsearch.db.citus.distribute` turns the tables into reference
and co-located distributed tables before the SQL files. The SQL files are the shipped ones:
their one Citus branch is the policies' call of `current_principals()`, a plain call there
(Citus refuses a subquery in a policy, `test_policy_with_a_subquery_is_refused`).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from mmsearch.db import schema

pytestmark = pytest.mark.citus


@pytest.fixture(scope="module")
def dsn(citus_dsn: str) -> Iterator[str]:
    schema.upgrade(citus_dsn)
    schema.upgrade(citus_dsn)  # a second init changes nothing
    yield citus_dsn


def test_policy_with_a_subquery_is_refused(dsn: str) -> None:
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.Error) as refused:
        conn.execute(
            "CREATE POLICY probe ON mmsearch.record FOR SELECT"
            " USING (acl && " + schema.PRINCIPALS_ONCE + ")"
        )
    assert "SubLink" in str(refused.value) or "Subqueries" in str(refused.value)


def test_policies_call_current_principals_on_every_shard(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        shipped = conn.execute(
            "SELECT DISTINCT pg_get_expr(polqual, polrelid) FROM pg_policy"
            " WHERE polname = 'visible_to_principals'"
        ).fetchall()
        on_shards = conn.execute(
            "SELECT DISTINCT result FROM run_command_on_shards('mmsearch.segment',"
            " $$SELECT pg_get_expr(polqual, polrelid) FROM pg_policy"
            " WHERE polrelid = '%s'::regclass AND polname = 'visible_to_principals'$$)"
        ).fetchall()
    quals = [qual.replace("mmsearch.", "") for (qual,) in shipped]
    assert quals == ["(acl && current_principals())"]
    assert len(on_shards) == 1 and "current_principals()" in on_shards[0][0]
    assert "SELECT" not in on_shards[0][0]


def test_tables_are_reference_or_colocated_by_record(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname, t.citus_table_type, t.distribution_column, t.colocation_id"
            " FROM citus_tables AS t JOIN pg_class AS c ON c.oid = t.table_name"
            " WHERE c.relnamespace = 'mmsearch'::regnamespace"
        ).fetchall()
    kinds = {name: (kind, column) for name, kind, column, _ in rows}
    assert kinds == {
        "api_token": ("reference", "<none>"),
        "backfill_skip": ("reference", "<none>"),
        "collection": ("reference", "<none>"),
        "ingest_error": ("reference", "<none>"),
        "ingest_lock": ("reference", "<none>"),
        "install": ("reference", "<none>"),
        "person": ("reference", "<none>"),
        "record": ("distributed", "id"),
        "segment": ("distributed", "record_id"),
        "space": ("reference", "<none>"),
    }
    colocation = {name: group for name, _, _, group in rows}
    assert colocation["record"] == colocation["segment"]


def test_api_tokens_resolve_through_the_coordinator(dsn: str) -> None:
    from mmsearch.api.tokens import add_token, token_principals
    from mmsearch.db.roles import read_roles

    with psycopg.connect(dsn) as conn:
        token = add_token(conn, "citus", ["group:eng"])
        conn.commit()
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(read_roles(conn).app)))
        assert token_principals(conn, token) == ["group:eng"]  # records its use, too
        assert token_principals(conn, token + "x") is None


def test_keys_are_adapted_and_foreign_keys_restored(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        constraints = dict(
            conn.execute(
                "SELECT conname, pg_get_constraintdef(c.oid) FROM pg_constraint AS c"
                " JOIN pg_dist_partition AS p ON p.logicalrelid = c.conrelid"  # not shards
                " WHERE connamespace = 'mmsearch'::regnamespace AND contype IN ('p', 'u', 'f')"
            ).fetchall()
        )
    assert constraints["segment_pkey"] == "PRIMARY KEY (record_id, id)"
    assert "record_collection_id_uri_key" not in constraints
    foreign = {name for name, definition in constraints.items() if "FOREIGN KEY" in definition}
    assert foreign == {
        "record_collection_id_fkey",
        "segment_record_id_fkey",
        "ingest_error_collection_id_fkey",
        "backfill_skip_space_id_fkey",
        "ingest_lock_collection_id_fkey",
    }


def test_register_space_adds_column_and_hnsw_index_on_every_shard(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "SELECT mmsearch.register_space('probe', ARRAY['text'], 'm', 'r', 8, 'cosine')"
        )
        conn.commit()
        per_shard = conn.execute(
            "SELECT result FROM run_command_on_shards('mmsearch.segment',"
            " $$SELECT count(*) FROM pg_indexes WHERE schemaname = 'mmsearch'"
            " AND tablename = split_part('%s', '.', 2) AND indexdef LIKE '%%probe_vec%%'$$)"
        ).fetchall()
    assert len(per_shard) == 32
    assert {row[0] for row in per_shard} == {"1"}


def test_drop_space_removes_the_column_on_every_shard(dsn: str) -> None:
    """`mmsearch space drop`: the registry row, its backfill skips, the column everywhere."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT mmsearch.register_space('gone', ARRAY['text'], 'm', 'r', 8, 'cosine')")
        conn.execute(
            "INSERT INTO mmsearch.backfill_skip (space_id, segment_id, reason)"
            " SELECT id, 1, 'probe' FROM mmsearch.space WHERE name = 'gone'"
        )
        conn.commit()
        conn.execute("SELECT mmsearch.drop_space('gone')")
        conn.commit()
        per_shard = conn.execute(
            "SELECT result FROM run_command_on_shards('mmsearch.segment',"
            " $$SELECT count(*) FROM information_schema.columns WHERE table_schema = 'mmsearch'"
            " AND table_name = split_part('%s', '.', 2) AND column_name = 'gone_vec'$$)"
        ).fetchall()
        assert len(per_shard) == 32 and {row[0] for row in per_shard} == {"0"}
        assert conn.execute("SELECT count(*) FROM mmsearch.backfill_skip").fetchone() == (0,)


def test_writes_through_the_coordinator_keep_the_single_node_rules(dsn: str) -> None:
    """Identity ids, the generated tsvector, the acl/collection triggers, cascades."""
    with psycopg.connect(dsn) as conn:
        collection = conn.execute(
            "INSERT INTO mmsearch.collection (name) VALUES ('c1') RETURNING id"
        ).fetchone()[0]
        record = conn.execute(
            "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes, acl)"
            " VALUES (%s, '/a', repeat('a', 64), 'text', 'text/plain', 1, '{group:eng}')"
            " RETURNING id",
            (collection,),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO mmsearch.segment (record_id, ordinal, kind, content)"
            " VALUES (%s, 0, 'chunk', 'Cats were sleeping'), (%s, 1, 'chunk', 'dogs')",
            (record, record),
        )
        rows = conn.execute(
            "SELECT collection_id, acl, content_tsv::text FROM mmsearch.segment"
            " WHERE record_id = %s ORDER BY ordinal",
            (record,),
        ).fetchall()
        assert rows == [
            (collection, ["group:eng"], "'cat':1 'sleep':3"),
            (collection, ["group:eng"], "'dog':1"),
        ]
        conn.execute("UPDATE mmsearch.record SET acl = '{group:ops}' WHERE id = %s", (record,))
        acls = conn.execute(
            "SELECT DISTINCT acl FROM mmsearch.segment WHERE record_id = %s", (record,)
        ).fetchall()
        assert acls == [(["group:ops"],)]
        conn.execute("DELETE FROM mmsearch.collection WHERE id = %s", (collection,))
        left = conn.execute(
            "SELECT count(*) FROM mmsearch.segment WHERE record_id = %s", (record,)
        ).fetchone()[0]
        assert left == 0


def test_set_role_to_a_role_without_login_cannot_reach_the_workers(dsn: str) -> None:
    """Citus opens shard connections as the current role: `SET ROLE` to the NOLOGIN app
    role fails (reads run on the service login instead, which can log in)."""
    from mmsearch.db.roles import read_roles

    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.OperationalError) as failed:
        app = read_roles(conn).app
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(app)))
        conn.execute("SELECT count(*) FROM mmsearch.segment")
    assert f"{app}@127.0.0.1" in str(failed.value)


def test_service_and_person_logins_read_through_the_coordinator(dsn: str) -> None:
    """The app's service login and a person's login reach the shards (Citus connects as
    them, with the passwords mmsearch keeps in pg_dist_authinfo) and RLS holds there: the
    service login's principals travel as SET LOCAL, a person's come from `mmsearch.person`."""
    from mmsearch.db.engine import Database
    from mmsearch.db.logins import add_person

    with psycopg.connect(dsn) as conn:
        cid = conn.execute(
            "INSERT INTO mmsearch.collection (name) VALUES ('logins') RETURNING id"
        ).fetchone()[0]
        for i, acl in enumerate((["public"], ["group:eng"], ["group:board"])):
            conn.execute(
                "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime,"
                " bytes, acl) VALUES (%s, %s, %s, 'text', 'text/plain', 1, %s)",
                (cid, f"/logins/{i}", f"{i + 900:064x}", acl),
            )
    count = "SELECT count(*) FROM mmsearch.record WHERE collection_id = %s"
    db = Database(dsn)
    try:
        for principals, want in (([], 1), (["group:eng"], 2), (["group:board", "group:eng"], 3)):
            with db.reader(principals) as conn:
                assert conn.execute(count, (cid,)).fetchone()[0] == want, principals
    finally:
        db.close()
    with psycopg.connect(add_person(dsn, "citus_eng", "analyst", ["group:eng"])) as conn:
        conn.execute("SET mmsearch.principals = '[\"group:board\"]'")  # ignored
        assert conn.execute(count, (cid,)).fetchone()[0] == 2
