"""Row-level security: a caller sees exactly the rows whose acl overlaps its principals.

The app reads as its service login with per-request principals; people log in as their own
logins, whose principals come from `mmsearch.person` whatever they set.
"""

from __future__ import annotations

import random

import psycopg
import pytest

from mmsearch.db.engine import Database
from mmsearch.errors import InvalidPrincipal
from tests.logins import person_dsn

PRINCIPALS = ["public", "user:alice", "user:bob", "group:eng", "group:ops", "user:carol"]


@pytest.fixture(scope="module")
def acls(db: Database) -> dict[int, set[str]]:
    """200 records with random ACLs, each with two segments; returns record id -> acl."""
    rng = random.Random(7)
    out: dict[int, set[str]] = {}
    with db.transaction() as conn:
        cid = conn.execute(
            "INSERT INTO mmsearch.collection (name) VALUES ('rls') RETURNING id"
        ).fetchone()[0]
        for i in range(200):
            acl = sorted(set(rng.sample(PRINCIPALS[1:], rng.randint(1, 2))))
            if rng.random() < 0.2:
                acl = ["public"]
            rid = conn.execute(
                "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime,"
                " bytes, acl) VALUES (%s, %s, %s, 'text', 'text/plain', 1, %s) RETURNING id",
                (cid, f"/doc/{i}", f"{i:064x}", acl),
            ).fetchone()[0]
            for ordinal in range(2):
                conn.execute(
                    "INSERT INTO mmsearch.segment (record_id, collection_id, ordinal, kind,"
                    " content) VALUES (%s, 0, %s, 'chunk', 'secret text')",
                    (rid, ordinal),
                )
            out[rid] = set(acl)
    return out


def expected(acls: dict[int, set[str]], principals: list[str]) -> set[int]:
    mine = set(principals) | {"public"}
    return {rid for rid, acl in acls.items() if acl & mine}


@pytest.mark.parametrize(
    "principals",
    [[], ["user:alice"], ["group:eng"], ["user:bob", "group:ops"], PRINCIPALS],
)
def test_app_role_sees_exactly_overlapping_rows(
    db: Database, acls: dict[int, set[str]], principals: list[str]
) -> None:
    with db.reader(principals) as conn:
        records = {r[0] for r in conn.execute("SELECT * FROM mmsearch.record").fetchall()}
        segments = {r[0] for r in conn.execute("SELECT record_id FROM mmsearch.segment").fetchall()}
        viewed = {r[0] for r in conn.execute("SELECT record_id FROM mmsearch.records").fetchall()}
        who = conn.execute(
            "SELECT current_user, session_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert who == (db.roles.service, db.roles.service, False)
    want = expected(acls, principals)
    assert records == want
    assert segments == want
    assert viewed == want


def test_analyst_login_sees_rows_by_its_own_principals(dsn: str, acls: dict[int, set[str]]) -> None:
    """Finding 2: the principals a person's login sees with are the owner's to set."""
    with psycopg.connect(person_dsn(dsn, "analyst", ["group:eng"])) as conn:
        want = expected(acls, ["group:eng"])
        assert {r[0] for r in conn.execute("SELECT id FROM mmsearch.record")} == want
        conn.execute("SELECT set_config('mmsearch.principals', '[\"group:ops\"]', false)")
        assert {r[0] for r in conn.execute("SELECT id FROM mmsearch.record")} == want
        assert conn.execute("SELECT count(*) FROM mmsearch.segment").fetchone()[0] == 2 * len(want)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM mmsearch.record")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE mmsearch.record DISABLE ROW LEVEL SECURITY")


def test_principals_in_the_dsn_are_ignored(dsn: str, acls: dict[int, set[str]]) -> None:
    """`options=-c mmsearch.principals=…` in a person's DSN widens nothing either."""
    params = psycopg.conninfo.conninfo_to_dict(person_dsn(dsn, "analyst", ["user:bob"]))
    params["options"] = '-c mmsearch.principals=["group:eng","user:alice"]'
    with psycopg.connect(psycopg.conninfo.make_conninfo(**params)) as conn:
        assert conn.execute("SHOW mmsearch.principals").fetchone()[0].startswith("[")
        rows = {r[0] for r in conn.execute("SELECT record_id FROM mmsearch.records")}
    assert rows == expected(acls, ["user:bob"])


def test_bi_login_reads_metadata_views_not_content(dsn: str, acls: dict[int, set[str]]) -> None:
    with psycopg.connect(person_dsn(dsn, "bi"), autocommit=True) as conn:
        count = conn.execute(
            "SELECT records FROM mmsearch.collection_stats WHERE collection = 'rls'"
        ).fetchone()[0]
        assert count == len(expected(acls, []))
        assert conn.execute("SELECT count(*) FROM mmsearch.records").fetchone()[0] == count
        for forbidden in (
            "SELECT content FROM mmsearch.segment",
            "SELECT * FROM mmsearch.segments",
            "SELECT * FROM mmsearch.segment",
            "SELECT id FROM mmsearch.record",
            "SELECT * FROM mmsearch.ingest_error",
            "SELECT * FROM mmsearch.collection",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(forbidden)


def test_app_cannot_reset_role_to_see_more(db: Database, acls: dict[int, set[str]]) -> None:
    """Finding 3: the reader is a non-superuser login; there is no role to go back to."""
    with db.reader(["user:alice"]) as conn:
        conn.execute("RESET ROLE")
        rows = {r[0] for r in conn.execute("SELECT id FROM mmsearch.record").fetchall()}
        superuser = conn.execute(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = session_user"
        ).fetchone()[0]
    assert rows == expected(acls, ["user:alice"])
    assert superuser is False
    with psycopg.connect(db.reader_dsn) as conn:  # what an ORM gets from the client
        assert conn.execute("SELECT count(*) FROM mmsearch.record").fetchone()[0] == len(
            expected(acls, [])
        )


@pytest.mark.parametrize(
    "bad", ["public,user:x", "*", "", "user:", "group:eng' OR '1'='1", "user:a b", "admin"]
)
def test_malformed_principals_are_refused(db: Database, bad: str) -> None:
    with pytest.raises(InvalidPrincipal), db.reader([bad]):
        pass


def test_principal_setting_cannot_widen_access(db: Database, acls: dict[int, set[str]]) -> None:
    """Even raw SQL that sets a comma list or wildcard sees only exact-match rows."""
    with db.reader() as conn:
        conn.execute(
            "SELECT set_config('mmsearch.principals', '[\"user:alice,group:eng\", \"*\"]', true)"
        )
        rows = {r[0] for r in conn.execute("SELECT id FROM mmsearch.record").fetchall()}
    assert rows == expected(acls, [])
