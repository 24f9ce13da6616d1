"""Permissions under random load: no search, SQL function or view returns a row outside the
caller's ACL, checked against a brute-force oracle computed from what the test wrote.

~40 principals, ~3000 records with random ACLs in 3 collections, and ~1000 random searches
through the app's service login (`client.search`, and raw SQL with per-request principals),
analysts' own logins (raw SQL functions and views; each login's principals come from
`mmsearch.person`, and before every query it sets a random other set of principals that must
be ignored) and BI logins (their metadata views). Keyword searches with a large k are checked for
*exact* equality with the oracle (nothing hidden that should show, nothing shown that should
hide); vector and hybrid legs are checked as subsets (they rank a truncated list). Plus: ACL
changes take effect at once, principal strings cannot widen access, and the roles' grants are
minimal according to the catalog.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql

from mmsearch.client import Client
from mmsearch.config import SpaceSpec
from mmsearch.db.engine import Database
from mmsearch.db.roles import Roles
from mmsearch.errors import InvalidPrincipal, UserError
from tests.logins import person_dsn

pytestmark = pytest.mark.model

SEED = 20240607
COLLECTIONS = ("pa", "pb", "pc")
USERS = [f"user:u{i:02d}" for i in range(28)]
GROUPS = [f"group:g{i:02d}" for i in range(12)]
PRINCIPALS = USERS + GROUPS  # 40, plus the implicit `public`
TEAMS = ("red", "blue", "green", "gold")
TAGS = ("alpha", "beta", "gamma", "delta")
# Words that are not English stop words and stem to themselves, so a keyword query for one
# matches exactly the segments whose content contains it (the oracle's rule).
VOCAB = [
    f"{a}{b}"
    for a in ("zor", "quil", "brax", "vend", "plim", "trok", "mu", "kesh", "dral", "yon")
    for b in ("ta", "po", "ki", "mo", "du", "ra", "ne", "lo", "fi", "gu")
]
PHRASES = [
    "quarterly revenue report",
    "broken glass in the kitchen",
    "how do I reset my password",
    "a cat sitting on a sofa",
    "rocket launch at dawn",
    "meeting notes about the audit",
    "espresso machine descaling",
    "parking permit renewal",
]
# Filter expressions (README grammar) with the Python predicate that defines their meaning.
FILTERS: list[tuple[str, Callable[[Rec], bool]]] = [
    ('collection = "pa"', lambda r: r.collection == "pa"),
    ('collection in ("pb", "pc")', lambda r: r.collection in ("pb", "pc")),
    ("meta.n >= 5", lambda r: r.n >= 5),
    ('meta.team = "red" or meta.n < 2', lambda r: r.team == "red" or r.n < 2),
    (
        'tags has "alpha" and not meta.team = "blue"',
        lambda r: "alpha" in r.tags and r.team != "blue",
    ),
    ('tags has any ("beta", "gamma")', lambda r: bool({"beta", "gamma"} & set(r.tags))),
    ('meta["team"] != "gold" and media_type = "text"', lambda r: r.team != "gold"),
    ('has meta.n and kind = "chunk"', lambda r: True),
]


@dataclass
class Rec:
    """What the test wrote for one record: the oracle's ground truth."""

    id: int
    collection: str
    acl: frozenset[str]
    team: str
    n: int
    tags: tuple[str, ...]
    segments: dict[int, set[str]] = field(default_factory=dict)  # segment id -> words


@dataclass
class World:
    records: dict[int, Rec]
    segment_record: dict[int, int]
    phrase_vectors: np.ndarray


@dataclass
class Tally:
    """Figures for the report: how much was checked and how much leaked."""

    searches: int = 0
    rows: int = 0
    leaks: int = 0
    exact_checks: int = 0
    by_surface: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    _mark: float = field(default_factory=time.perf_counter)

    def count(self, surface: str) -> None:
        self.searches += 1
        self.by_surface[surface] = self.by_surface.get(surface, 0) + 1
        now = time.perf_counter()
        self.seconds[surface] = self.seconds.get(surface, 0.0) + now - self._mark
        self._mark = now


def visible(world: World, principals: list[str]) -> set[int]:
    """The oracle: records whose ACL overlaps the caller's principals plus `public`."""
    mine = set(principals) | {"public"}
    return {rid for rid, rec in world.records.items() if rec.acl & mine}


def connect_as(dsn: str, role: str, principals: list[str]) -> psycopg.Connection:
    """A person's own login of `role` (analyst or bi) that sees with `principals`."""
    return psycopg.connect(person_dsn(dsn, role, principals), autocommit=True)


def set_principals(conn: psycopg.Connection, principals: list[str]) -> None:
    """Session-wide on an autocommit login; transaction-local inside a transaction, as
    `SET LOCAL` (what Citus forwards to the shards; it never forwards set_config)."""
    local = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    conn.execute(
        sql.SQL("SET {} mmsearch.principals = {}").format(
            sql.SQL("LOCAL" if local else "SESSION"), sql.Literal(json.dumps(principals))
        )
    )


def vec_text(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in v) + "]"


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tclient(client: Client) -> Client:
    """The module client with only the `text` space configured: one model, fast ingests."""
    settings = replace(client.settings, spaces=(SpaceSpec("text", "sentence-transformers"),))
    text_only = Client(client.db, settings)
    text_only.register_spaces(["text"])
    return text_only


def populate(db: Database, phrase_vectors: np.ndarray, *, n_records: int, seed: int) -> World:
    """Insert records and segments fast as the owner; return the oracle's copy of them."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    records: dict[int, Rec] = {}
    segment_record: dict[int, int] = {}
    with db.transaction() as conn:
        cids = {}
        for name in COLLECTIONS:
            conn.execute(
                "INSERT INTO mmsearch.collection (name) VALUES (%s) ON CONFLICT DO NOTHING",
                (name,),
            )
            cids[name] = conn.execute(
                "SELECT id FROM mmsearch.collection WHERE name = %s", (name,)
            ).fetchone()[0]
        start = conn.execute("SELECT count(*) FROM mmsearch.record").fetchone()[0]
        rows = []
        protos = []
        for i in range(n_records):
            roll = rng.random()
            if roll < 0.1:
                acl = ["public"]
            else:
                acl = rng.sample(PRINCIPALS, rng.randint(1, 3))
                if roll > 0.97:
                    acl.append("public")
            proto = Rec(
                0,
                rng.choice(COLLECTIONS),
                frozenset(acl),
                rng.choice(TEAMS),
                rng.randint(0, 9),
                tuple(sorted(rng.sample(TAGS, rng.randint(0, 2)))),
            )
            protos.append(proto)
            rows.append(
                (
                    cids[proto.collection],
                    f"/perm/{seed}/{start + i}.txt",
                    f"{seed + start + i:064x}",
                    sorted(acl),
                    list(proto.tags),
                    json.dumps({"team": proto.team, "n": proto.n}),
                )
            )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes,"
                " title, acl, tags, metadata) VALUES (%s, %s, %s, 'text', 'text/plain', 1, 't',"
                " %s, %s, %s::jsonb) RETURNING id",
                rows,
                returning=True,
            )
            ids = []
            while True:
                ids.append(cur.fetchone()[0])
                if not cur.nextset():
                    break
        seg_rows = []
        for rid, proto in zip(ids, protos, strict=True):
            proto.id = rid
            records[rid] = proto
            for ordinal in range(rng.randint(1, 4)):
                words = rng.sample(VOCAB, 6)
                base = phrase_vectors[rng.randrange(len(phrase_vectors))]
                v = base + nrng.normal(0, 0.04, base.shape)
                v = (v / np.linalg.norm(v)).astype(np.float32)
                seg_rows.append((rid, ordinal, " ".join(words), v))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO mmsearch.segment (record_id, collection_id, ordinal, kind, content,"
                " text_vec) VALUES (%s, 0, %s, 'chunk', %s, %s) RETURNING id, record_id, content",
                seg_rows,
                returning=True,
            )
            while True:
                sid, rid, content = cur.fetchone()
                records[rid].segments[sid] = set(content.split())
                segment_record[sid] = rid
                if not cur.nextset():
                    break
        conn.execute("ANALYZE mmsearch.record")
        conn.execute("ANALYZE mmsearch.segment")
    return World(records, segment_record, phrase_vectors)


@pytest.fixture(scope="module")
def world(tclient: Client) -> World:
    phrase_vectors = tclient.embedder("text").encode_texts(PHRASES, query=True)
    started = time.perf_counter()
    out = populate(tclient.db, np.asarray(phrase_vectors), n_records=3000, seed=SEED)
    seconds = time.perf_counter() - started
    print(f"\npermissions: populated {len(out.records)} records in {seconds:.1f}s")
    return out


# -- the random loop ----------------------------------------------------------------------


def random_principals(rng: random.Random) -> list[str]:
    roll = rng.random()
    if roll < 0.1:
        return []
    if roll < 0.2:
        return ["public"]
    return rng.sample(PRINCIPALS, rng.randint(1, 4))


def check_rows(
    tally: Tally,
    world: World,
    principals: list[str],
    record_ids: list[int],
    *,
    where: str,
    segment_ids: list[int] = (),
    predicate: Callable[[Rec], bool] | None = None,
    exact: set[int] | None = None,
) -> None:
    """Every row must be visible to `principals`; filters must hold; `exact`: the full set."""
    allowed = visible(world, principals)
    tally.rows += len(record_ids) + len(segment_ids)
    leaked = [rid for rid in record_ids if rid not in allowed]
    leaked += [sid for sid in segment_ids if world.segment_record.get(sid) not in allowed]
    tally.leaks += len(leaked)
    assert not leaked, f"{where}: rows outside the ACL of {principals}: {leaked[:10]}"
    for sid, rid in zip(segment_ids, record_ids, strict=False):
        assert world.segment_record[sid] == rid, where
    if predicate is not None:
        wrong = [rid for rid in record_ids if not predicate(world.records[rid])]
        assert not wrong, f"{where}: rows that do not pass the filter: {wrong[:10]}"
    if exact is not None:
        tally.exact_checks += 1
        got = set(record_ids)
        assert got == exact, (
            f"{where}: missing {sorted(exact - got)[:10]}, extra {sorted(got - exact)[:10]}"
        )


def keyword_oracle(
    world: World, principals: list[str], word: str, pred: Callable[[Rec], bool]
) -> set[int]:
    return {
        rid
        for rid in visible(world, principals)
        if pred(world.records[rid])
        and any(word in ws for ws in world.records[rid].segments.values())
    }


def one_api_search(rng: random.Random, tclient: Client, world: World, tally: Tally) -> None:
    """One `client.search` as the app role: a random mode, query kind and filter."""
    principals = random_principals(rng)
    options: dict[str, Any] = {"principals": principals}
    pred: Callable[[Rec], bool] = lambda r: True  # noqa: E731
    roll = rng.random()
    if roll < 0.25:
        coll = rng.choice(COLLECTIONS)
        options["collection"] = coll
        pred = lambda r, c=coll: r.collection == c  # noqa: E731
    elif roll < 0.35:
        tag = rng.choice(TAGS)
        options["tags"] = [tag]
        pred = lambda r, t=tag: t in r.tags  # noqa: E731
    elif roll < 0.45:
        team = rng.choice(TEAMS)
        options["metadata"] = {"team": team}
        pred = lambda r, t=team: r.team == t  # noqa: E731
    elif roll < 0.75:
        options["filter"], pred = rng.choice(FILTERS)
    if rng.random() < 0.2:
        options["segments"] = True
    kind = rng.random()
    exact: set[int] | None = None
    if kind < 0.15:  # query by example: more like a segment
        sid = rng.choice(list(world.segment_record))
        allowed = visible(world, principals)
        options.pop("segments", None)
        options["k"] = rng.choice([5, 20])
        if world.segment_record[sid] not in allowed:
            with pytest.raises(UserError, match="not found"):
                tclient.search(sid, **options)
            tally.count("api:like-hidden")
            return
        hits = tclient.search(sid, **options)
        surface = "api:like"
    else:
        mode = rng.choice(["hybrid", "vector", "keyword"])
        options["mode"] = mode
        if mode == "keyword" or rng.random() < 0.5:
            word = rng.choice(VOCAB)
            query = word if mode != "hybrid" else f"{word} {rng.choice(PHRASES)}"
        else:
            query = rng.choice(PHRASES)
        if mode == "keyword" and not options.get("segments"):
            options["k"] = 1000
            exact = keyword_oracle(world, principals, query, pred)
        else:
            options["k"] = rng.choice([5, 10, 50])
        hits = tclient.search(query, **options)
        surface = f"api:{mode}"
    check_rows(
        tally,
        world,
        principals,
        [h.record_id for h in hits],
        segment_ids=[h.segment_id for h in hits],
        where=f"{surface} {options}",
        predicate=pred,
        exact=exact,
    )
    tally.count(surface)


def one_sql_search(
    rng: random.Random,
    conn: psycopg.Connection,
    world: World,
    tally: Tally,
    role: str,
    principals: list[str],
) -> None:
    """One analyst-side call: a search function or a view, as `principals` may see."""
    coll = rng.choice([None, *COLLECTIONS])
    in_coll: Callable[[Rec], bool] = lambda r: coll is None or r.collection == coll  # noqa: E731
    allowed = visible(world, principals)
    what = rng.choice(["keyword", "mlt", "hybrid", "records", "segments", "stats"])
    if what == "keyword":
        word = rng.choice(VOCAB)
        rows = conn.execute(
            "SELECT segment_id, record_id FROM mmsearch.keyword_search(%s, %s, 1000)", (word, coll)
        ).fetchall()
        exact = keyword_oracle(world, principals, word, in_coll)
        check_rows(
            tally, world, principals, [r[1] for r in rows], segment_ids=[r[0] for r in rows],
            where=f"{role} keyword_search", predicate=in_coll, exact=exact,
        )  # fmt: skip
    elif what == "mlt":
        sid = rng.choice(list(world.segment_record))
        if world.segment_record[sid] not in allowed:
            # hidden and absent look the same: no existence leak either
            with (
                pytest.raises(psycopg.errors.NoDataFound, match=f"segment {sid} not found"),
                conn.transaction(),  # a savepoint inside the app's transaction
            ):
                conn.execute(
                    "SELECT * FROM mmsearch.more_like_this(%s, 'text', 20, %s)", (sid, coll)
                )
        else:
            rows = conn.execute(
                "SELECT segment_id, record_id FROM mmsearch.more_like_this(%s, 'text', 20, %s)",
                (sid, coll),
            ).fetchall()
            assert world.segment_record[sid] not in {r[1] for r in rows}
            check_rows(
                tally, world, principals, [r[1] for r in rows], segment_ids=[r[0] for r in rows],
                where=f"{role} more_like_this", predicate=in_coll,
            )  # fmt: skip
    elif what == "hybrid":
        word = rng.choice(VOCAB)
        v = world.phrase_vectors[rng.randrange(len(PHRASES))]
        rows = conn.execute(
            "SELECT segment_id, record_id FROM mmsearch.hybrid_search(%s, %s::vector, 'text', %s,"
            " %s)",
            (word, vec_text(v), coll, rng.choice([10, 100])),
        ).fetchall()
        check_rows(
            tally, world, principals, [r[1] for r in rows], segment_ids=[r[0] for r in rows],
            where=f"{role} hybrid_search", predicate=in_coll,
        )  # fmt: skip
    elif what == "records":
        rows = conn.execute("SELECT record_id, segments FROM mmsearch.records").fetchall()
        check_rows(
            tally, world, principals, [r[0] for r in rows], where=f"{role} records view",
            exact=allowed,
        )  # fmt: skip
        for rid, count in rows:  # segment counts come from visible segments of the record
            assert count == len(world.records[rid].segments)
    elif what == "segments":
        rows = conn.execute("SELECT segment_id, record_id FROM mmsearch.segments").fetchall()
        check_rows(
            tally, world, principals, [r[1] for r in rows], segment_ids=[r[0] for r in rows],
            where=f"{role} segments view", exact=allowed,
        )  # fmt: skip
        want = sum(len(world.records[rid].segments) for rid in allowed)
        assert len(rows) == want
    else:
        stats_check(conn, world, principals, allowed, tally, role)
    tally.count(f"{role}:{what}")


def stats_check(
    conn: psycopg.Connection,
    world: World,
    principals: list[str],
    allowed: set[int],
    tally: Tally,
    role: str,
) -> None:
    """collection_stats counts only what the caller may see."""
    got = dict(
        conn.execute(
            "SELECT collection, records FROM mmsearch.collection_stats WHERE collection = ANY(%s)",
            (list(COLLECTIONS),),
        ).fetchall()
    )
    want = {c: sum(1 for rid in allowed if world.records[rid].collection == c) for c in COLLECTIONS}
    tally.rows += len(got)
    if got != want:
        tally.leaks += sum(max(0, got.get(c, 0) - want[c]) for c in COLLECTIONS)
    assert got == want, f"{role} collection_stats as {principals}"


def one_bi_read(
    rng: random.Random, conn: psycopg.Connection, world: World, tally: Tally, principals: list[str]
) -> None:
    """A BI login: the `records` view and `collection_stats`, nothing else."""
    allowed = visible(world, principals)
    if rng.random() < 0.5:
        team = rng.choice(TEAMS)
        rows = conn.execute(
            "SELECT record_id FROM mmsearch.records WHERE metadata->>'team' = %s", (team,)
        ).fetchall()
        exact = {rid for rid in allowed if world.records[rid].team == team}
        check_rows(tally, world, principals, [r[0] for r in rows], where="bi records", exact=exact)
        tally.count("bi:records")
    else:
        stats_check(conn, world, principals, allowed, tally, "bi")
        tally.count("bi:stats")


def person_logins(
    dsn: str, role: str, rng: random.Random, count: int
) -> list[tuple[list[str], psycopg.Connection]]:
    """`count` logins of `role`, each with random principals of its own."""
    out = []
    for _ in range(count):
        principals = random_principals(rng)
        out.append((principals, connect_as(dsn, role, principals)))
    return out


def run_loop(tclient: Client, dsn: str, world: World, *, searches: int, seed: int) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    analysts = person_logins(dsn, "analyst", rng, 12)
    bis = person_logins(dsn, "bi", rng, 6)
    try:
        for _ in range(searches):
            roll = rng.random()
            if roll < 0.45:
                one_api_search(rng, tclient, world, tally)
            elif roll < 0.75:
                principals, conn = rng.choice(analysts)
                set_principals(conn, random_principals(rng))  # a person's setting: ignored
                one_sql_search(rng, conn, world, tally, "analyst", principals)
            elif roll < 0.85:
                # the service login through raw SQL, as `Database.reader` does it
                with tclient.db.reader_pool.connection() as conn, conn.transaction():
                    principals = random_principals(rng)
                    set_principals(conn, principals)
                    one_sql_search(rng, conn, world, tally, "app-sql", principals)
            else:
                principals, conn = rng.choice(bis)
                set_principals(conn, random_principals(rng))
                one_bi_read(rng, conn, world, tally, principals)
    finally:
        for _, conn in analysts + bis:
            conn.close()
    return tally


def report(tally: Tally, world: World, seconds: float, record: Callable[[str, Any], None]) -> None:
    figures = {
        "principals": len(PRINCIPALS) + 1,
        "records": len(world.records),
        "segments": len(world.segment_record),
        "searches": tally.searches,
        "rows_checked": tally.rows,
        "exact_set_checks": tally.exact_checks,
        "leaks": tally.leaks,
        "seconds": round(seconds, 1),
        "by_surface": dict(sorted(tally.by_surface.items())),
        "seconds_by_surface": {k: round(v, 1) for k, v in sorted(tally.seconds.items())},
    }
    for key, value in figures.items():
        record(key, value)
    print("\npermissions figures: " + json.dumps(figures))


def test_random_searches_never_leak(
    tclient: Client, dsn: str, world: World, record_property: Callable[[str, Any], None]
) -> None:
    started = time.perf_counter()
    tally = run_loop(tclient, dsn, world, searches=1000, seed=SEED)
    report(tally, world, time.perf_counter() - started, record_property)
    assert tally.leaks == 0
    assert tally.searches == 1000
    assert tally.rows > 10_000  # the checks saw real result sets, not empty lists
    assert tally.exact_checks > 100


@pytest.mark.slow
def test_random_searches_never_leak_long(
    tclient: Client, dsn: str, world: World, record_property: Callable[[str, Any], None]
) -> None:
    """The long loop: 3000 more records (6000 in all) and 8000 searches with other seeds."""
    bigger = populate(tclient.db, world.phrase_vectors, n_records=3000, seed=SEED + 1)
    merged = World(
        {**world.records, **bigger.records},
        {**world.segment_record, **bigger.segment_record},
        world.phrase_vectors,
    )
    try:
        started = time.perf_counter()
        tally = run_loop(tclient, dsn, merged, searches=8000, seed=SEED + 2)
        report(tally, merged, time.perf_counter() - started, record_property)
        assert tally.leaks == 0
    finally:  # the module's other tests check against `world` alone
        with tclient.db.transaction() as conn:
            conn.execute("DELETE FROM mmsearch.record WHERE id = ANY (%s)", (list(bigger.records),))


# -- ACL changes take effect at once -------------------------------------------------------


def sees(tclient: Client, principals: list[str], word: str, mode: str) -> set[str]:
    query = word if mode == "keyword" else f"{word} notes"
    hits = tclient.search(query, principals=principals, mode=mode, collection="aclx", k=50)
    return {Path(h.uri).name for h in hits}


def test_acl_update_reaches_segments_at_once(tclient: Client, tmp_path: Path) -> None:
    """UPDATE of a record's acl (as the owner) and a re-ingest with another acl both apply to
    every segment in the next search: no stale copy of the old acl survives anywhere."""
    doc = tmp_path / "memo.txt"
    doc.write_text(("Zorblatt memo about the quarterly plan. " * 40 + "\n\n") * 6)
    tclient.ingest([doc], collection="aclx", acl=["group:aa"])
    with tclient.db.transaction() as conn:
        rid, nseg = conn.execute(
            "SELECT r.id, count(s.id) FROM mmsearch.record r JOIN mmsearch.segment s"
            " ON s.record_id = r.id WHERE r.uri = %s GROUP BY r.id",
            (str(doc),),
        ).fetchone()
    assert nseg >= 2  # several segments, so propagation is tested on more than one
    for mode in ("keyword", "vector", "hybrid"):
        assert sees(tclient, ["group:aa"], "zorblatt", mode) == {"memo.txt"}, mode
        assert sees(tclient, ["group:bb"], "zorblatt", mode) == set(), mode

    with tclient.db.transaction() as conn:
        conn.execute("UPDATE mmsearch.record SET acl = '{group:bb}' WHERE id = %s", (rid,))
    for mode in ("keyword", "vector", "hybrid"):
        assert sees(tclient, ["group:aa"], "zorblatt", mode) == set(), mode
        assert sees(tclient, ["group:bb"], "zorblatt", mode) == {"memo.txt"}, mode
    with tclient.db.reader(["group:aa"]) as conn:
        assert conn.execute(
            "SELECT count(*) FROM mmsearch.segment WHERE record_id = %s", (rid,)
        ).fetchone() == (0,)

    report = tclient.ingest([doc], collection="aclx", acl=["user:cc"])
    assert report.updated == 1
    assert sees(tclient, ["group:bb"], "zorblatt", "keyword") == set()
    assert sees(tclient, ["user:cc"], "zorblatt", "keyword") == {"memo.txt"}
    with tclient.db.transaction() as conn:
        acls = conn.execute(
            "SELECT DISTINCT acl FROM mmsearch.segment WHERE record_id = %s", (rid,)
        ).fetchall()
    assert acls == [(["user:cc"],)]


# -- principal strings cannot widen access --------------------------------------------------

HOSTILE_PRINCIPALS = [
    "public,user:x",
    "*",
    "",
    " ",
    "user:",
    "group:",
    "user:*",
    "user:%",
    "group:g00' OR '1'='1",
    "user:u00'); DROP TABLE mmsearch.record; --",
    '"]; select 1; --',
    "user:u00\n",
    "user:u00 ",
    "publіc",  # Cyrillic і
    "ｐｕｂｌｉｃ",  # fullwidth
    "user:u0О",  # Cyrillic О
    "user:" + "a" * 5000,
    "user:u00\x00",
    "User:u00",
    "PUBLIC",
    "{public}",
    "user:u00,group:g00",
]


@pytest.mark.parametrize("bad", HOSTILE_PRINCIPALS)
def test_api_refuses_hostile_principal(tclient: Client, world: World, bad: str) -> None:
    with pytest.raises(InvalidPrincipal):
        tclient.search("zortagu", principals=[bad], mode="keyword")
    with pytest.raises(InvalidPrincipal):
        tclient.search(next(iter(world.segment_record)), principals=[bad])
    with pytest.raises(InvalidPrincipal):
        tclient.ingest([], collection="pa", acl=[bad])


RAW_SETTINGS = [
    "*",
    "public,user:u00",
    "[*]",
    '{"user:u00": true}',
    '"user:u00"',
    "null",
    '[["user:u00"]]',
    "[1, 2]",
    "' OR true --",
    '["user:u00\\u0000"]',
    '["public\\u0000"]',
]


#: the raw settings that are not a JSON array of scalars: the service login's query errors
RAW_ERRORS = {raw for raw in RAW_SETTINGS if raw != "[1, 2]"}


@pytest.mark.parametrize("role", ["analyst", "bi"])
def test_raw_hostile_principals_widen_nothing_for_a_person(
    dsn: str, world: World, role: str
) -> None:
    """A person's login never even parses the setting: every hostile value sees exactly
    what the login's own principals see, and none errors."""
    mine = visible(world, ["user:u00"])
    with connect_as(dsn, role, ["user:u00"]) as conn:
        # PostgreSQL text cannot hold NUL: that one is tried raw below
        set_principals(conn, [p for p in HOSTILE_PRINCIPALS if "\x00" not in p])
        got = {r[0] for r in conn.execute("SELECT record_id FROM mmsearch.records").fetchall()}
        assert got == mine
        errors = []
        for raw in RAW_SETTINGS:
            conn.execute("SELECT set_config('mmsearch.principals', %s, false)", (raw,))
            try:
                rows = conn.execute("SELECT record_id FROM mmsearch.records").fetchall()
            except psycopg.Error:
                errors.append(raw)
                continue
            assert {r[0] for r in rows} == mine, raw
    assert errors == []


def test_raw_hostile_principals_widen_nothing_for_the_service_login(
    tclient: Client, world: World
) -> None:
    """The service login's setting is parsed: what is not a JSON array of strings fails the
    query (counted: exactly those), the rest sees no more than public rows."""
    public = visible(world, [])
    errors = set()
    for raw in [json.dumps([p for p in HOSTILE_PRINCIPALS if "\x00" not in p]), *RAW_SETTINGS]:
        with tclient.db.reader_pool.connection() as conn, conn.transaction():
            conn.execute("SELECT set_config('mmsearch.principals', %s, true)", (raw,))
            try:
                with conn.transaction():  # a savepoint: the error ends only this attempt
                    rows = conn.execute("SELECT record_id FROM mmsearch.records").fetchall()
            except psycopg.Error:
                errors.add(raw)
                continue
        assert {r[0] for r in rows} <= public, raw
    assert errors == RAW_ERRORS


# -- grants, from the catalog -------------------------------------------------------------


@pytest.fixture(scope="module")
def owner(db: Database) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def roles(db: Database) -> Roles:
    return db.roles


@pytest.fixture(scope="module")
def people(dsn: str) -> dict[str, str]:
    """role -> the login of one person of that role."""
    return {
        role: psycopg.conninfo.conninfo_to_dict(person_dsn(dsn, role, ["group:g00"]))["user"]
        for role in ("analyst", "bi")
    }


@pytest.fixture(scope="module")
def readers(roles: Roles, people: dict[str, str]) -> list[str]:
    """Every role and login that reads: none may write, bypass RLS or own a table."""
    return [roles.app, roles.analyst, roles.bi, roles.service, *people.values()]


def test_bi_cannot_read_vectors_or_content(
    owner: psycopg.Connection, world: World, roles: Roles, people: dict[str, str]
) -> None:
    columns = [
        r[0]
        for r in owner.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'mmsearch.segment'::regclass"
            " AND attnum > 0 AND NOT attisdropped"
        ).fetchall()
    ]
    forbidden = [c for c in columns if c.endswith("_vec") or c in ("content", "content_tsv")]
    assert "text_vec" in forbidden and "content" in forbidden
    for bi in (roles.bi, people["bi"]):
        for column in forbidden:
            assert not owner.execute(
                "SELECT has_column_privilege(%s, 'mmsearch.segment', %s, 'SELECT')", (bi, column)
            ).fetchone()[0], column
        for relation in ("mmsearch.segment", "mmsearch.segments", "mmsearch.record"):
            assert not owner.execute(
                "SELECT has_table_privilege(%s, %s, 'SELECT')", (bi, relation)
            ).fetchone()[0], relation
        for fn in ("keyword_search(text, text, integer)", "segment_vector(bigint, text)",
                   "more_like_this(bigint, text, integer, text)",
                   "hybrid_search(text, vector, text, text, integer, integer)"):  # fmt: skip
            assert not owner.execute(
                "SELECT has_function_privilege(%s, %s, 'EXECUTE')", (bi, f"mmsearch.{fn}")
            ).fetchone()[0], fn


def test_readers_cannot_write_any_table(owner: psycopg.Connection, readers: list[str]) -> None:
    tables = [
        r[0]
        for r in owner.execute(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = 'mmsearch' AND c.relkind IN"
            " ('r', 'p', 'v', 'm', 'f')"
        ).fetchall()
    ]
    assert {"mmsearch.record", "mmsearch.segment", "mmsearch.records"} <= set(tables)
    for role in readers:
        for table in tables:
            for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"):
                assert not owner.execute(
                    "SELECT has_table_privilege(%s, %s, %s)", (role, table, privilege)
                ).fetchone()[0], (role, table, privilege)
            for privilege in ("INSERT", "UPDATE"):
                assert not owner.execute(
                    "SELECT has_any_column_privilege(%s, %s, %s)", (role, table, privilege)
                ).fetchone()[0], (role, table, privilege)


TOKEN_LOOKUP = "mmsearch.api_token_principals(bytea)"


def test_no_role_can_bypass_or_disable_rls(
    owner: psycopg.Connection, roles: Roles, readers: list[str]
) -> None:
    everyone = [*readers, roles.ingest, roles.writer, roles.name("views"), roles.name("search")]
    rows = owner.execute(
        "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole FROM pg_roles"
        " WHERE rolname = ANY(%s)",
        (everyone,),
    ).fetchall()
    assert {r[0] for r in rows} == set(everyone)
    for name, superuser, bypass, createrole in rows:
        assert not (superuser or bypass or createrole), name
    owners = owner.execute(
        "SELECT DISTINCT c.relowner::regrole::text FROM pg_class c JOIN pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = 'mmsearch'"
        " UNION SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'mmsearch'"
    ).fetchall()
    # owning a table (or being a member of its owner) is what ALTER ... DISABLE needs; the
    # search role reads every row
    for held in [*(r[0].strip('"') for r in owners), roles.name("search")]:
        for role in [*readers, roles.ingest, roles.writer]:
            assert not owner.execute(
                "SELECT pg_has_role(%s, %s, 'MEMBER')", (role, held)
            ).fetchone()[0], (role, held)
    flags = owner.execute(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
        " WHERE oid IN ('mmsearch.record'::regclass, 'mmsearch.segment'::regclass,"
        " 'mmsearch.ingest_error'::regclass)"
    ).fetchall()
    assert len(flags) == 3 and all(r[1] and r[2] for r in flags), flags
    # SECURITY DEFINER functions: only roles that bypass nothing own them, search_path pinned
    definers = owner.execute(
        "SELECT p.oid::regprocedure::text, p.proowner::regrole::text, p.proconfig"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'mmsearch' AND p.prosecdef"
    ).fetchall()
    # the search's core applies the callers' policy itself as the search role, which owns
    # nothing else (tests/test_search_security.py compares its results with what RLS shows)
    search_core = {"mmsearch.search_plan(jsonb)", "mmsearch.search_request(jsonb)"}
    assert {"mmsearch.person_principals()", TOKEN_LOOKUP, *search_core} <= {d[0] for d in definers}
    for signature, function_owner, config in definers:
        assert any(c.startswith("search_path=") for c in config or []), signature
        if signature == TOKEN_LOOKUP:  # resolves an API token by its hash; reads no RLS row
            continue
        assert function_owner.strip('"') in (roles.name("views"), roles.name("search")), signature
        if signature in search_core:
            assert function_owner.strip('"') == roles.name("search"), signature
    for role in [*readers, roles.ingest, roles.writer]:
        may_call = owner.execute(
            "SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, TOKEN_LOOKUP)
        ).fetchone()[0]
        assert may_call == (role in (roles.app, roles.service)), role


def test_register_space_not_executable_by_roles(
    owner: psycopg.Connection, readers: list[str], roles: Roles
) -> None:
    signature = "mmsearch.register_space(text, text[], text, text, integer, text, jsonb)"
    for role in [*readers, roles.ingest, roles.writer]:
        assert not owner.execute(
            "SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, signature)
        ).fetchone()[0], role


@pytest.mark.parametrize("role", ["analyst", "bi"])
def test_row_security_off_is_refused_not_obeyed(dsn: str, world: World, role: str) -> None:
    """`SET row_security = off` makes a query fail rather than skip the policies."""
    with connect_as(dsn, role, ["group:g01"]) as conn:
        conn.execute("SET row_security = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM mmsearch.records").fetchone()
