"""One server vs a 2-worker Citus cluster, through mmsearch: search latency, recall, ingest.

The same synthetic rows go into a database on a throwaway embedded server (one node) and
into one on a throwaway local cluster (coordinator + 2 workers, all on this machine): N
segments, 4 per record, 384-d vectors drawn around the `text` model's embeddings of varied
phrases (scaled to norm 3 under unit Gaussian noise, ~20: nearly uniform on the sphere, the
hard case for one HNSW graph), made-up words for the keyword leg, random ACLs over 20
principals. Each
side is set up by `mmsearch init` (schema.upgrade; on the cluster the Citus branch
distributes the tables) and loaded by the owner with COPY, then the `text` space's HNSW
index is built.

Measured per side, through the service login with random principals, as the Python API
searches (`mmsearch.search_request`):
- recall@10 of the default (auto) vector search against the same search with
  `vector_path = exact` (every visible row ranked by true distance);
- p50/p95 latency of vector, keyword and hybrid searches (k = 10, one hit per record),
  unfiltered and restricted to one collection of four;
- ingest: `Client.ingest` of small text files (the real model), files and segments per
  second, and the HNSW build time of the bulk load.

    python -m bench.citus_compare [--n 200000] [--queries 40] [--files 100]

Prints a table and writes bench/out/citus-compare-<n>.json. Needs `make citus`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Jsonb

from bench.load import write_docs
from bench.scratch import scratch_dsn
from bench.synthetic import clustered
from mmsearch.client import Client
from mmsearch.config import Settings, SpaceSpec
from mmsearch.db import schema
from mmsearch.db.credentials import CredentialStore
from mmsearch.db.engine import Database

PRINCIPALS = [f"group:g{i:02d}" for i in range(20)]
COLLECTIONS = ("c0", "c1", "c2", "c3")
WORDS = [f"{a}{b}" for a in ("zor", "quil", "brax", "vend", "plim") for b in ("ta", "po", "ki")]
PHRASES = [
    f"{a} {b}"
    for a in ("a report about", "a photo of", "notes on", "a question about", "a story of")
    for b in ("revenue", "a cat", "rockets", "coffee", "passwords", "the audit", "parking",
              "kitchens", "glass", "the sea")
]  # fmt: skip
K = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="segments (default 200000)")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--files", type=int, default=100, help="files ingested per side")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="mmsearch-citus-compare-", dir="/tmp") as tmp,
        single_node() as single,
        local_cluster() as cluster,
    ):
        home = Path(tmp)
        settings = Settings.load(home=home)
        settings = replace(settings, spaces=(SpaceSpec("text", "sentence-transformers"),))
        for name, dsn in (("single", single), ("citus", cluster)):
            print(f"== {name}", flush=True)
            schema.upgrade(dsn)
            database = Database(dsn, credentials=CredentialStore.in_home(home))
            client = Client(database, replace(settings, database_url=dsn))
            try:
                client.register_spaces(["text"])
                results[name] = measure_side(client, dsn, args, home / name)
            finally:
                client.close()
    report(args, results)


@contextmanager
def single_node() -> Iterator[str]:
    with scratch_dsn(None, "mmsearch_compare") as dsn:
        yield dsn


@contextmanager
def local_cluster() -> Iterator[str]:
    from mmsearch.cluster.local import LocalCluster

    root = Path(tempfile.mkdtemp(prefix="mmsearch-citus-compare-", dir="/tmp"))
    cluster = LocalCluster(root)
    try:
        cluster.up()
        yield cluster.add_database("mmsearch_compare")
    finally:
        cluster.down(purge=True)
        shutil.rmtree(root, ignore_errors=True)


def measure_side(client: Client, dsn: str, args: argparse.Namespace, folder: Path) -> dict:
    rng = np.random.default_rng(1616)
    centres = np.asarray(client.embedder("text").encode_texts(PHRASES, query=False))
    vectors = clustered(rng, centres * 3, args.n)[0].astype(np.float32)
    queries = np.asarray(
        client.embedder("text").encode_texts([f"{p}, again" for p in PHRASES], query=True)
    )[: args.queries]
    loaded = bulk_load(dsn, vectors, random.Random(16))
    out: dict[str, Any] = {"load": loaded}
    pick = random.Random(7)
    requests = [
        (pick.sample(PRINCIPALS, 3), queries[i % len(queries)], pick.choice(WORDS))
        for i in range(args.queries)
    ]
    out["recall"] = recall(client, requests)
    out["latency"] = latency(client, requests)
    out["ingest"] = ingest_rate(client, folder, args.files)
    print(json.dumps(out, indent=1), flush=True)
    return out


def bulk_load(dsn: str, vectors: np.ndarray, rng: random.Random) -> dict[str, float]:
    """COPY as the owner (no RLS for it), then build the HNSW index; seconds of each."""
    n_records = len(vectors) // 4
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        register_vector(conn)
        index = conn.execute(
            "SELECT index_name, create_statement FROM mmsearch.space_index('text')"
        ).fetchone()
        conn.execute(sql.SQL("DROP INDEX mmsearch.{}").format(sql.Identifier(index[0])))
        for name in COLLECTIONS:
            conn.execute("INSERT INTO mmsearch.collection (name) VALUES (%s)", (name,))
        cids = dict(conn.execute("SELECT name, id FROM mmsearch.collection").fetchall())
        with conn.cursor().copy(
            "COPY mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes, acl)"
            " FROM STDIN"
        ) as copy:
            for i in range(n_records):
                acl = rng.sample(PRINCIPALS, 2) + (["public"] if rng.random() < 0.05 else [])
                copy.write_row([cids[COLLECTIONS[i % 4]], f"/bench/{i}", f"{i:064x}", "text",
                                "text/plain", 1, acl])  # fmt: skip
        ids = dict(conn.execute("SELECT uri, id FROM mmsearch.record").fetchall())
        with conn.cursor().copy(
            "COPY mmsearch.segment (record_id, ordinal, kind, content, text_vec) FROM STDIN"
            " (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int4", "text", "text", "vector"])
            for j, vector in enumerate(vectors):
                words = " ".join(rng.choice(WORDS) for _ in range(6))
                copy.write_row([ids[f"/bench/{j // 4}"], j % 4, "chunk", words, vector])
        copied = time.perf_counter() - started
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(sql.SQL(index[1]))
        conn.execute("ANALYZE mmsearch.record")
        conn.execute("ANALYZE mmsearch.segment")
    return {
        "copy_s": round(copied, 1),
        "hnsw_build_s": round(time.perf_counter() - started - copied, 1),
    }


def search(client: Client, principals: list[str], request: dict[str, Any]) -> list[int]:
    with client.db.reader(principals) as conn:
        rows = conn.execute(
            "SELECT segment_id FROM mmsearch.search_request(%s)", (Jsonb(request),)
        ).fetchall()
    return [row[0] for row in rows]


def vector_text(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7f}" for x in v) + "]"


def recall(client: Client, requests: list[tuple[list[str], np.ndarray, str]]) -> dict:
    """Recall@10 of the auto path against exact, unfiltered and in one collection."""
    found = {"all": [], "one_collection": []}
    for i, (principals, vector, _) in enumerate(requests):
        for scope, extra in (
            ("all", {}),
            ("one_collection", {"collections": [COLLECTIONS[i % 4]]}),
        ):
            request = {"vectors": {"text": vector_text(vector)}, "k": K, "segments": True, **extra}
            truth = set(search(client, principals, {**request, "vector_path": "exact"}))
            got = set(search(client, principals, request))
            found[scope].append(len(truth & got) / max(len(truth), 1))
    return {scope: round(statistics.mean(v), 3) for scope, v in found.items()}


def latency(client: Client, requests: list[tuple[list[str], np.ndarray, str]]) -> dict:
    """p50/p95 (ms) per mode and scope, the whole transaction as the client sees it."""
    out = {}
    for mode in ("vector", "keyword", "hybrid"):
        for scope in ("all", "one_collection"):
            times = []
            for i, (principals, vector, word) in enumerate(requests):
                request: dict[str, Any] = {"k": K}
                if mode != "keyword":
                    request["vectors"] = {"text": vector_text(vector)}
                if mode != "vector":
                    request["query"] = word
                if scope == "one_collection":
                    request["collections"] = [COLLECTIONS[i % 4]]
                started = time.perf_counter()
                search(client, principals, request)
                times.append((time.perf_counter() - started) * 1000)
            times = times[1:]  # the first warms the connection and caches
            out[f"{mode}/{scope}"] = {
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(float(np.percentile(times, 95)), 1),
            }
    return out


def ingest_rate(client: Client, folder: Path, files: int) -> dict[str, float]:
    folder.mkdir(parents=True, exist_ok=True)
    write_docs(folder, files, random.Random(3))
    report = client.ingest(folder, collection="ingest-bench", acl=["group:g00"])
    with client.db.reader(["group:g00"]) as conn:
        segments = conn.execute(
            "SELECT count(*) FROM mmsearch.segment AS s JOIN mmsearch.collection AS c"
            " ON c.id = s.collection_id WHERE c.name = 'ingest-bench'"
        ).fetchone()[0]
    write = report.stage_seconds.get("write", 0.0)
    return {"files": report.ingested, "segments": segments, "seconds": round(report.seconds, 1),
            "files_per_s": round(report.ingested / report.seconds, 2),
            "write_s": round(write, 2),
            "write_ms_per_file": round(1000 * write / max(report.ingested, 1), 1)}  # fmt: skip


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    load = os.getloadavg()
    print(f"\n{args.n} segments, {args.queries} queries, {date.today()}, load {load[0]:.1f}")
    for name, side in results.items():
        print(f"{name}: load {side['load']}, recall {side['recall']}, ingest {side['ingest']}")
        for key, value in side["latency"].items():
            print(f"  {key:24s} p50 {value['p50_ms']:8.1f} ms  p95 {value['p95_ms']:8.1f} ms")
    out = Path("bench/out")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"citus-compare-{args.n}.json"
    path.write_text(json.dumps({"n": args.n, "queries": args.queries, "date": str(date.today()),
                                "loadavg": load, "results": results}, indent=1))  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
