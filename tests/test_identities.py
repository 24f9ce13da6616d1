"""Trust (issue 11): every login authenticates, principals are bound to logins, nothing leaks.

Each test names the finding of issue 11 it guards (docs/security.md has the table). The
corpus is written straight into the tables by the owner, so no model is needed: a tiny
3-dimensional space stands in where a vector function needs one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from mmsearch.db import schema
from mmsearch.db.engine import Database
from mmsearch.db.logins import LIMITS, add_person, remove_person, reset_password, set_principals
from tests.conftest import drop_database, new_database
from tests.logins import person_dsn

BOARD_WORD = "zeppelin"


def write_corpus(owner_dsn: str) -> dict[str, int]:
    """Public, eng and board records (each one segment), board and public ingest errors."""
    rows = {
        "public.txt": (["public"], "the espresso machine manual"),
        "eng.txt": (["group:eng"], "deploy notes for the espresso service"),
        "board.txt": (["group:board"], f"the {BOARD_WORD} merger plan, espresso at dawn"),
    }
    ids = {}
    with psycopg.connect(owner_dsn) as conn:
        cid = conn.execute(
            "INSERT INTO mmsearch.collection (name) VALUES ('trust') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "SELECT mmsearch.register_space('tiny', ARRAY['text'], 'test/tiny', '', 3, 'cosine')"
        )
        for i, (name, (acl, content)) in enumerate(rows.items()):
            ids[name] = conn.execute(
                "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes,"
                " title, acl) VALUES (%s, %s, %s, 'text', 'text/plain', 1, %s, %s) RETURNING id",
                (cid, f"/trust/{name}", f"{i:064x}", name, acl),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO mmsearch.segment (record_id, collection_id, ordinal, kind, content,"
                " tiny_vec) VALUES (%s, 0, 0, 'chunk', %s, %s::vector)",
                (ids[name], content, f"[1,{i},0.5]"),
            )
        for name, acl in (("/trust/board-broken.pdf", ["group:board"]), ("/trust/x.pdf", [])):
            conn.execute(
                "INSERT INTO mmsearch.ingest_error (collection_id, uri, stage, message, acl)"
                " VALUES (%s, %s, 'decode', 'unreadable PDF', %s)",
                (cid, name, acl or ["public"]),
            )
    return ids


@pytest.fixture(scope="module")
def corpus(dsn: str) -> dict[str, int]:
    return write_corpus(dsn)


def board_rows(conn: psycopg.Connection, board_id: int) -> list[str]:
    """Every way an analyst reads rows; names the ones that returned a board row."""
    reads = {
        "record": "SELECT id FROM mmsearch.record",
        "segment": "SELECT record_id FROM mmsearch.segment",
        "records view": "SELECT record_id FROM mmsearch.records",
        "segments view": "SELECT record_id FROM mmsearch.segments",
        "keyword_search": "SELECT record_id FROM mmsearch.keyword_search("
        f"'{BOARD_WORD} or espresso')",
        "hybrid_search": "SELECT record_id FROM mmsearch.hybrid_search("
        f"'{BOARD_WORD} espresso', '[1,2,0.5]'::vector, 'tiny', k => 50)",
        "more_like_this": "SELECT record_id FROM mmsearch.more_like_this("
        "(SELECT min(id) FROM mmsearch.segment), 'tiny', 50)",
        "search": "SELECT record_id FROM mmsearch.search(vectors => jsonb_build_object("
        "'tiny', '[1,2,0.5]'::vector), segments => true, k => 1000)",
    }
    leaked = []
    for name, statement in reads.items():
        ids = {r[0] for r in conn.execute(statement).fetchall()}
        assert ids, name  # public rows always come back: the read itself works
        if board_id in ids:
            leaked.append(name)
    errors = {r[0] for r in conn.execute("SELECT uri FROM mmsearch.ingest_error").fetchall()}
    if "/trust/board-broken.pdf" in errors:
        leaked.append("ingest_error")
    stats = conn.execute(
        "SELECT records, ingest_errors FROM mmsearch.collection_stats WHERE collection = 'trust'"
    ).fetchone()
    if stats != (2, 1):
        leaked.append(f"collection_stats {stats}")
    return leaked


# -- finding 1: every login authenticates -----------------------------------------------------


def test_every_login_needs_its_password(db: Database, dsn: str, corpus: dict[str, int]) -> None:
    assert db.writer_dsn is not None
    logins = [dsn, db.reader_dsn, db.writer_dsn, person_dsn(dsn, "analyst", ["group:eng"])]
    for login in logins:
        params = psycopg.conninfo.conninfo_to_dict(login)
        with psycopg.connect(login) as conn:  # with its password it works
            assert conn.execute("SELECT current_user").fetchone()[0] == params["user"]
        for password in (None, "", "wrong-password"):
            attempt = {**params, "password": password} if password is not None else {
                k: v for k, v in params.items() if k != "password"
            }  # fmt: skip
            env_free = psycopg.conninfo.make_conninfo(**attempt, passfile="/dev/null")
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(env_free, connect_timeout=10)


# -- findings 2 and 3: principals are bound to the login ----------------------------------------


@pytest.mark.parametrize("role", ["analyst", "bi"])
def test_person_sees_no_board_row_whatever_it_sets(
    dsn: str, corpus: dict[str, int], role: str
) -> None:
    """The acceptance check: an analyst (or BI) login with group:eng never sees group:board."""
    login = person_dsn(dsn, role, ["group:eng"])
    board = corpus["board.txt"]
    with psycopg.connect(login, autocommit=True) as conn:
        if role == "bi":  # BI: the metadata views only
            rows = {r[0] for r in conn.execute("SELECT record_id FROM mmsearch.records")}
            assert rows == {corpus["public.txt"], corpus["eng.txt"]}
            return
        assert board_rows(conn, board) == []
        conn.execute("SELECT set_config('mmsearch.principals', '[\"group:board\"]', false)")
        assert board_rows(conn, board) == []
        with conn.transaction():
            conn.execute("SELECT set_config('mmsearch.principals', '[\"group:board\"]', true)")
            assert board_rows(conn, board) == []
        for target in ("app", "ingest", "views", "search", "analyst"):
            name = f"{conn.info.user.split('.')[0]}.{target}"
            if target == "analyst":  # its own group: allowed, and still bound to the login
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(name)))
                assert board_rows(conn, board) == []
                conn.execute("RESET ROLE")
                continue
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(name)))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET SESSION AUTHORIZATION postgres")
        assert conn.execute("SELECT mmsearch.current_principals()").fetchone()[0] == [
            "group:eng",
            "public",
        ]


def test_owner_changes_principals_at_once(dsn: str, corpus: dict[str, int]) -> None:
    carol = add_person(dsn, "carol", "analyst", ["group:eng"])
    try:
        with psycopg.connect(carol, autocommit=True) as conn:
            assert board_rows(conn, corpus["board.txt"]) == []
            set_principals(dsn, "carol", ["group:board"])  # the same session, next query
            assert "record" in board_rows(conn, corpus["board.txt"])
        fresh = reset_password(dsn, "carol")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(carol, connect_timeout=10)
        psycopg.connect(fresh, connect_timeout=10).close()
    finally:
        remove_person(dsn, "carol")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(fresh, connect_timeout=10)


def test_service_login_is_the_only_one_passing_principals(
    db: Database, corpus: dict[str, int]
) -> None:
    with db.reader(["group:board"]) as conn:
        assert corpus["board.txt"] in {r[0] for r in conn.execute("SELECT id FROM mmsearch.record")}
    with db.reader(["group:eng"]) as conn:
        assert board_rows(conn, corpus["board.txt"]) == []
    roles = db.roles
    with psycopg.connect(db.reader_dsn) as conn:
        member_of = {
            r[0]
            for r in conn.execute(
                "SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid"
                " WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = session_user)"
            )
        }
        flags = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
            " WHERE rolname = session_user"
        ).fetchone()
    assert member_of == {roles.app}
    assert flags == (False, False, False, False)


# -- finding 6: no catalog change, and EXPLAIN ANALYZE tells nothing ----------------------------


def test_ts_match_vq_is_not_leakproof(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        leakproof = conn.execute(
            "SELECT proleakproof FROM pg_proc"
            " WHERE oid = 'pg_catalog.ts_match_vq(tsvector, tsquery)'::regprocedure"
        ).fetchone()[0]
    assert leakproof is False


PROBES = (
    "content_tsv @@ to_tsquery('english', 'acme')",
    "content LIKE '%acme%'",
    "record_id IN (SELECT id FROM mmsearch.record WHERE title = 'acme')",
    "record_id IN (SELECT id FROM mmsearch.record WHERE uri LIKE '/acme/%')",
    "record_id IN (SELECT id FROM mmsearch.record WHERE tags @> '{acme}')",
    'record_id IN (SELECT id FROM mmsearch.record WHERE metadata @> \'{"w": "acme"}\')',
)


def explain_as_analyst(owner_dsn: str, hidden_word: str) -> str:
    """EXPLAIN ANALYZE of probes for a word by an eng analyst, in a fresh database where 400
    board rows (200 live, 200 deleted: dead tuples) hold `hidden_word` in every column."""
    with psycopg.connect(owner_dsn) as conn:
        conn.execute("ALTER TABLE mmsearch.segment SET (autovacuum_enabled = false)")
        conn.execute("ALTER TABLE mmsearch.record SET (autovacuum_enabled = false)")
        cid = conn.execute("INSERT INTO mmsearch.collection (name) VALUES ('x') RETURNING id")
        cid = cid.fetchone()[0]
        for i in range(1200):
            acl, word = (["group:eng"], "acme" if i % 3 == 0 else "plain") if i < 800 else (
                ["group:board"], hidden_word
            )  # fmt: skip
            rid = conn.execute(
                "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes,"
                " title, tags, metadata, acl) VALUES (%s, %s, %s, 'text', 'text/plain', 1, %s,"
                " %s, %s, %s) RETURNING id",
                (cid, f"/{word}/{i:04d}", f"{i:064x}", word, [word], f'{{"w": "{word}"}}', acl),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO mmsearch.segment (record_id, collection_id, ordinal, kind, content)"
                " VALUES (%s, 0, 0, 'chunk', %s)",
                (rid, f"quarterly report number {i % 7} {word}"),
            )
        conn.execute("DELETE FROM mmsearch.record WHERE acl = '{group:board}' AND uri ~ '/1[01]'")
        conn.commit()
        conn.execute("ANALYZE mmsearch.record")
        conn.execute("ANALYZE mmsearch.segment")
        conn.commit()
    plans = []
    with psycopg.connect(person_dsn(owner_dsn, "analyst", ["group:eng"])) as conn:
        conn.execute("SET enable_seqscan = off")  # what someone probing the indexes would do
        for probe in PROBES:
            plan = conn.execute(
                "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY OFF, BUFFERS OFF)"
                f" SELECT 1 FROM mmsearch.segment WHERE {probe}"
            ).fetchall()
            plans.append("\n".join(r[0] for r in plan))
    return "\n\n".join(plans)


def test_explain_analyze_reveals_nothing_about_hidden_rows(server_dsn: str) -> None:
    """Two databases that differ only in whether hidden (live and dead) rows hold the word
    give the analyst the same plans, estimates and row counts (finding 6)."""
    plans = []
    for word in ("acme", "zinc"):
        owner = new_database(server_dsn, "explain")
        try:
            schema.upgrade(owner)
            plans.append(explain_as_analyst(owner, word))
        finally:
            drop_database(server_dsn, owner)
    assert "rows=" in plans[0]
    assert plans[0] == plans[1], f"hidden words change the plan:\n{plans[0]}\n---\n{plans[1]}"


# -- finding 7: ingest_error is row-protected; BI reads views only ------------------------------


def test_ingest_errors_follow_the_acl(db: Database, dsn: str, corpus: dict[str, int]) -> None:
    def errors(conn: psycopg.Connection) -> set[str]:
        return {r[0] for r in conn.execute("SELECT uri FROM mmsearch.ingest_error")}

    with psycopg.connect(person_dsn(dsn, "analyst", ["group:eng"])) as conn:
        assert errors(conn) == {"/trust/x.pdf"}
    with psycopg.connect(person_dsn(dsn, "analyst", ["group:board"])) as conn:
        assert errors(conn) == {"/trust/x.pdf", "/trust/board-broken.pdf"}
    with db.reader(["user:nobody"]) as conn:
        assert errors(conn) == {"/trust/x.pdf"}


def test_bi_holds_no_table_privilege(db: Database, dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind IN ('r', 'p')"
                " AND c.relnamespace = 'mmsearch'::regnamespace"
            )
        ]
        for role in (db.roles.bi, psycopg.conninfo.conninfo_to_dict(person_dsn(dsn, "bi"))["user"]):
            held = [
                t
                for t in tables
                if conn.execute(
                    "SELECT has_table_privilege(%s, %s, 'SELECT')"
                    " OR has_any_column_privilege(%s, %s, 'SELECT')",
                    (role, t, role, t),
                ).fetchone()[0]
            ]
            assert held == [], role


# -- finding 8: two databases never share a role -------------------------------------------------


def test_two_databases_share_no_role(server_dsn: str, dsn: str, corpus: dict[str, int]) -> None:
    other = new_database(server_dsn, "second")
    try:
        schema.upgrade(other)
        write_corpus(other)
        with psycopg.connect(dsn) as a, psycopg.connect(other) as b:
            prefix_a = a.execute("SELECT role_prefix FROM mmsearch.install").fetchone()[0]
            prefix_b = b.execute("SELECT role_prefix FROM mmsearch.install").fetchone()[0]
            granted_b = {
                r[0]
                for r in b.execute(
                    "SELECT DISTINCT grantee FROM information_schema.role_table_grants"
                    " WHERE table_schema = 'mmsearch'"
                )
            }
        assert prefix_a != prefix_b
        assert not any(g.startswith(f"{prefix_a}.") for g in granted_b)
        # A's analyst reaches B's database (PUBLIC may connect) and reads nothing there.
        params = psycopg.conninfo.conninfo_to_dict(person_dsn(dsn, "analyst", ["group:board"]))
        params["dbname"] = psycopg.conninfo.conninfo_to_dict(other)["dbname"]
        with psycopg.connect(psycopg.conninfo.make_conninfo(**params)) as conn:
            for table in ("record", "records", "segment", "ingest_error"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"SELECT 1 FROM mmsearch.{table}")
                conn.rollback()
    finally:
        drop_database(server_dsn, other)


# -- finding 9: a read-only login cannot stall ingest or searches ----------------------------------


@pytest.fixture
def analyst(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(person_dsn(dsn, "analyst", ["group:eng"])) as conn:
        yield conn


def test_read_only_login_cannot_hold_the_ingest_lock(
    db: Database, analyst: psycopg.Connection, corpus: dict[str, int]
) -> None:
    with psycopg.connect(db.dsn) as owner:
        cid = owner.execute("SELECT id FROM mmsearch.collection WHERE name = 'trust'").fetchone()[0]
    uri = "/trust/new.txt"
    # What the ingest used to lock on: anyone could take this advisory lock.
    analyst.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"{cid}:{uri}",))
    for lock in ("FOR UPDATE", "FOR SHARE", "FOR KEY SHARE"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute(f"SELECT 1 FROM mmsearch.ingest_lock {lock}")
        analyst.rollback()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        analyst.execute("LOCK TABLE mmsearch.record IN EXCLUSIVE MODE")
    analyst.rollback()
    analyst.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"{cid}:{uri}",))
    done = threading.Event()

    def write() -> None:
        from mmsearch.ingest.store import lock_uri

        with db.writer() as conn:
            lock_uri(conn, cid, uri)
        done.set()

    worker = threading.Thread(target=write, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert done.is_set(), "the ingest waited on a lock a read-only login holds"


def test_space_registration_does_not_queue_searches(
    db: Database, analyst: psycopg.Connection, corpus: dict[str, int]
) -> None:
    """A long analyst transaction holds ACCESS SHARE on segment; the DDL of a new space
    waits for it, but only a second at a time, so searches keep running meanwhile."""
    analyst.execute("SELECT count(*) FROM mmsearch.segment").fetchone()  # transaction stays open
    outcome: list[object] = []

    def register() -> None:
        try:
            outcome.append(
                db.retrying(
                    lambda conn: conn.execute(
                        "SELECT name FROM mmsearch.register_space('blocked', ARRAY['text'],"
                        " 'test/blocked', '', 3, 'cosine')"
                    ).fetchone()
                )
            )
        except Exception as exc:  # reported below
            outcome.append(exc)

    worker = threading.Thread(target=register, daemon=True)
    worker.start()
    time.sleep(0.5)
    slowest = 0.0
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        started = time.monotonic()
        with db.reader(["group:eng"]) as conn:
            conn.execute("SELECT count(*) FROM mmsearch.segment").fetchone()
        slowest = max(slowest, time.monotonic() - started)
    assert worker.is_alive() and not outcome  # still waiting for the analyst
    analyst.rollback()  # the long transaction ends: the space goes in
    worker.join(timeout=30)
    assert outcome == [("blocked",)]
    assert slowest < 2.5, f"a search waited {slowest:.1f} s behind the DDL"


def test_read_only_login_cannot_block_init(
    dsn: str, analyst: psycopg.Connection, corpus: dict[str, int]
) -> None:
    """The migration lock used to be an advisory key any login could hold for ever."""
    from mmsearch.db.schema import MIGRATION_LOCK_KEY, VERSION_TABLE

    analyst.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        analyst.execute(f"LOCK TABLE public.{VERSION_TABLE} IN EXCLUSIVE MODE")
    analyst.rollback()
    finished = threading.Event()

    def upgrade() -> None:
        schema.upgrade(dsn)  # at head already: locks, re-applies the SQL files
        finished.set()

    worker = threading.Thread(target=upgrade, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert finished.is_set(), "init waited on a lock a read-only login holds"


def test_every_login_has_limits(db: Database, dsn: str) -> None:
    logins = {
        "service": db.roles.service,
        "writer": db.roles.writer,
        "analyst": psycopg.conninfo.conninfo_to_dict(person_dsn(dsn, "analyst"))["user"],
        "bi": psycopg.conninfo.conninfo_to_dict(person_dsn(dsn, "bi"))["user"],
    }
    with psycopg.connect(dsn) as conn:
        for kind, login in logins.items():
            limit, config = conn.execute(
                "SELECT rolconnlimit, coalesce(rolconfig, '{}') FROM pg_roles WHERE rolname = %s",
                (login,),
            ).fetchone()
            settings = dict(entry.split("=", 1) for entry in config)
            assert limit == LIMITS[kind].connections, kind
            for name in ("statement_timeout", "idle_in_transaction_session_timeout",
                         "temp_file_limit", "lock_timeout"):  # fmt: skip
                assert name in settings, (kind, name)
    with psycopg.connect(person_dsn(dsn, "analyst")) as conn:
        assert conn.execute("SHOW temp_file_limit").fetchone()[0] == "2GB"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET temp_file_limit = -1")
