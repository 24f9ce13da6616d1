"""What the trust changes (issue 11) cost: keyword search without a LEAKPROOF `@@`, opening a
`Database` (checking the service and ingest logins), and hashing through a private copy.

    .venv/bin/python -m bench.trust --quick      # 20k segments, 20 queries, a 50 MB file
    .venv/bin/python -m bench.trust              # 100k segments, 50 queries, a 200 MB file
        [--dsn URL]                              # a server to create the scratch database on

Keyword search: `Client.search(mode="keyword")` (`mmsearch.search_request`) and the SQL function
`mmsearch.keyword_search`, both through the service login, as a caller who sees about 10%
of the rows and as one who sees them all. First as shipped (`ts_match_vq` not LEAKPROOF:
the match is evaluated after the row-level security filter, on every visible row; no
statistics on `content_tsv`), then as earlier versions left the database (LEAKPROOF, so the
GIN index may drive the scan, and the column analysed), restored afterwards. Same data,
same queries, same session. Prints Markdown.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from bench.scratch import scratch_dsn
from mmsearch.db import schema
from mmsearch.db.credentials import CredentialStore
from mmsearch.db.engine import Database
from mmsearch.ingest.files import sha256_of, snapshot

WORDS = [f"w{i:04d}" for i in range(5000)]
GROUPS = [f"group:g{i}" for i in range(10)]
#: the state earlier versions left: `@@` LEAKPROOF, and statistics on the tsvector column
BEFORE = (
    "ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF",
    "ALTER TABLE mmsearch.segment ALTER COLUMN content_tsv SET STATISTICS -1",
    "ANALYZE mmsearch.segment",
)
#: back to what migration 0004_identities makes it
AFTER = (
    "ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) NOT LEAKPROOF",
    "ALTER TABLE mmsearch.segment ALTER COLUMN content_tsv SET STATISTICS 0",
    "DELETE FROM pg_statistic WHERE starelid = 'mmsearch.segment'::regclass AND staattnum ="
    " (SELECT attnum FROM pg_attribute WHERE attrelid = 'mmsearch.segment'::regclass"
    " AND attname = 'content_tsv')",
)


def populate(owner: str, segments: int, seed: int = 7) -> None:
    """Records of one segment each: 12 random words, the ACL one of ten groups (binary COPY
    as the owner; the segments' ACLs come from their records by trigger, as always)."""
    rng = random.Random(seed)
    with psycopg.connect(owner) as conn:
        cid = conn.execute("INSERT INTO mmsearch.collection (name) VALUES ('b') RETURNING id")
        cid = cid.fetchone()[0]
        with conn.cursor().copy(
            "COPY mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes, acl)"
            " FROM STDIN"
        ) as copy:
            for i in range(segments):
                copy.write_row((cid, f"/b/{i}", f"{i:064x}", "text", "text/plain", 1,
                                [rng.choice(GROUPS)]))  # fmt: skip
        ids = [r[0] for r in conn.execute("SELECT id FROM mmsearch.record ORDER BY id")]
        with conn.cursor().copy(
            "COPY mmsearch.segment (record_id, collection_id, ordinal, kind, content) FROM STDIN"
        ) as copy:
            for record_id in ids:
                copy.write_row((record_id, cid, 0, "chunk", " ".join(rng.sample(WORDS, 12))))
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE mmsearch.segment")


def keyword_latencies(
    db: Database, queries: list[str], principals: list[str], *, api: bool
) -> list[float]:
    """Seconds per query: the Python API's keyword mode, or the SQL function."""
    from mmsearch.embed.registry import Embedders
    from mmsearch.query.request import SearchOptions
    from mmsearch.query.search import search

    seconds = []
    for query in queries:
        started = time.perf_counter()
        if api:
            options = SearchOptions(mode="keyword", principals=principals, k=10)
            search(db, Embedders(()), query, options)
        else:
            with db.reader(principals) as conn:
                sql = "SELECT * FROM mmsearch.keyword_search(%s, NULL, 10)"
                conn.execute(sql, (query,)).fetchall()
        seconds.append(time.perf_counter() - started)
    return seconds


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_search(owner: str, segments: int, queries: int) -> dict[str, tuple[float, float]]:
    populate(owner, segments)
    rng = random.Random(11)
    words = [rng.choice(WORDS) for _ in range(queries)]
    db = Database(owner, credentials=CredentialStore.in_home(Path(tempfile.mkdtemp())))
    try:
        keyword_latencies(db, words[:3], GROUPS, api=True)  # warm the caches
        results = {}
        for label, change in (("as shipped", ()), ("before (LEAKPROOF, statistics)", BEFORE)):
            with psycopg.connect(owner, autocommit=True) as conn:
                for statement in change:
                    conn.execute(statement)
            try:
                for who, principals in (("10%", GROUPS[:1]), ("all", GROUPS)):
                    for path, api in (("Client.search keyword", True), ("keyword_search()", False)):
                        seconds = keyword_latencies(db, words, principals, api=api)
                        p50, p95 = statistics.median(seconds), percentile(seconds, 0.95)
                        results[f"{path}, {label}, caller sees {who}"] = (p50, p95)
            finally:
                with psycopg.connect(owner, autocommit=True) as conn:
                    for statement in AFTER:
                        conn.execute(statement)
        return results
    finally:
        db.close()


def measure_open(owner: str, repeat: int = 5) -> float:
    home = Path(tempfile.mkdtemp())
    Database(owner, credentials=CredentialStore.in_home(home)).close()  # logins created
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        Database(owner, credentials=CredentialStore.in_home(home)).close()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def measure_snapshot(megabytes: int) -> tuple[float, float]:
    """Seconds to hash a file in place, and to hash it while copying it privately."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.bin"
        with path.open("wb") as fh:
            for _ in range(megabytes):
                fh.write(os.urandom(1 << 20))
        started = time.perf_counter()
        digest, _ = sha256_of(path)
        hashed = time.perf_counter() - started
        started = time.perf_counter()
        with snapshot(path, None, Path(tmp) / "work", 1 << 40) as copy:
            assert copy.sha256 == digest == hashlib.sha256(path.read_bytes()).hexdigest()
        copied = time.perf_counter() - started
    return hashed, copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k segments, 20 queries, 50 MB")
    parser.add_argument("--dsn", default=os.environ.get("MMSEARCH_DATABASE_URL"))
    args = parser.parse_args()
    segments, queries, megabytes = (20_000, 20, 50) if args.quick else (100_000, 50, 200)
    with scratch_dsn(args.dsn, prefix="mmsearch_bench_trust") as owner:
        schema.upgrade(owner)
        opened = measure_open(owner)
        search = measure_search(owner, segments, queries)
    hashed, copied = measure_snapshot(megabytes)
    print(f"\n{segments:,} segments, {queries} keyword queries\n")
    print("| keyword search via the service login | p50 ms | p95 ms |\n|---|---|---|")
    for label, (p50, p95) in search.items():
        print(f"| {label} | {p50 * 1000:.1f} | {p95 * 1000:.1f} |")
    print(f"\nDatabase() open (logins checked): {opened * 1000:.0f} ms")
    print(f"{megabytes} MB file: hash in place {hashed:.2f} s, hash + private copy {copied:.2f} s")


if __name__ == "__main__":
    main()
