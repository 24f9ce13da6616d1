"""`python -m bench.search`: arguments, then data, ground truth, systems, tables."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from bench.scratch import scratch_database, server
from bench.search import systems
from bench.search.data import Corpus, Dataset, generate, load
from bench.search.measure import Row, cannot, concurrent_qps, timed, tune
from bench.search.peers import PEERS, Peer
from bench.search.report import Run, plot, print_tables, write_json
from bench.search.scenarios import SCENARIOS, Scenario
from bench.search.truth import Truth, ground_truth
from mmsearch.db import embedded, schema
from mmsearch.db.engine import Database

PG_SYSTEMS = {"mmsearch": "mmsearch", "sql": "hand-written SQL"}


def main(argv: Sequence[str] | None = None) -> None:
    args = arguments(argv)
    for key in (s for s in args.systems if s in PEERS):
        PEERS[key].check_installed()  # before an hour of PostgreSQL, not after
    started = time.perf_counter()
    data = generate(args.n, args.queries, args.dim)
    scenarios = [s for s in SCENARIOS if s.key in args.scenarios]
    truth = {s.key: ground_truth(data, s) for s in scenarios}
    run = Run(args.n, args.dim, args.queries, {}, [], {"numpy": np.__version__}, {},
              {k: str(v) for k, v in vars(args).items() if k != "dsn"}, 0.0)  # fmt: skip
    try:
        if set(args.systems) & set(PG_SYSTEMS):
            with database(args) as dsn:
                measure_postgres(run, dsn, data, scenarios, truth, args)
        for key in (s for s in args.systems if s in PEERS):
            measure_peer(run, PEERS[key], data, scenarios, truth, args)
    finally:  # what was measured is kept, even when a later system fails
        run.wall_s = time.perf_counter() - started
        print(f"wrote {write_json(run)}")
    print_tables(run)
    if args.plots and args.sweep:
        for path in plot(run):
            print(f"wrote {path}")


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    import bench.search

    parser = argparse.ArgumentParser(
        description=(bench.search.__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    every = [*PG_SYSTEMS, *PEERS]
    parser.add_argument("--n", type=int, default=100_000, help="segments (default 100000)")
    parser.add_argument("--queries", type=int, default=100, help="queries per scenario")
    parser.add_argument("--dim", type=int, default=384, choices=(384, 512))
    parser.add_argument("--quick", action="store_true", help="20k segments, 20 queries")
    parser.add_argument("--systems", default=",".join(every), help=f"subset of {every}")
    parser.add_argument(
        "--scenarios",
        default=",".join(s.key for s in SCENARIOS),
        help=f"subset of {[s.key for s in SCENARIOS]}",
    )
    parser.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds one setting may take before it stops (after 10 queries)",
    )
    parser.add_argument(
        "--maintenance-work-mem",
        default="1GB",
        help="for the HNSW build: a graph larger than this builds far slower",
    )
    parser.add_argument(
        "--shared-buffers",
        help="e.g. 3GB, for an embedded server the run starts: room for the HNSW graph (with"
        " the 128MB default a 1M graph is reread from the OS at every query); a --dsn server"
        " keeps its own",
    )
    parser.add_argument(
        "--dsn",
        default=os.environ.get("MMSEARCH_DATABASE_URL"),
        help="a server to use (default: a throwaway embedded one)",
    )
    parser.add_argument("--keep", type=Path,
                        help="keep the database (on --dsn, else an embedded server under"
                        " KEEP/pg, left running) and the peers' stores under KEEP, and reuse"
                        " them when the next run has the same data")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.queries, args.budget = 20_000, 20, 10.0
    args.systems = args.systems.split(",")
    args.scenarios = args.scenarios.split(",")
    unknown = set(args.systems) - set(every) or set(args.scenarios) - {s.key for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown system or scenario: {sorted(unknown)}")
    return args


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    """A database for the run: a throwaway one, or with --keep one named after the data."""
    if args.keep is None:
        with server(args.dsn) as maintenance:
            if not args.dsn and args.shared_buffers:
                maintenance = configured(maintenance, args.shared_buffers)
            with scratch_database(maintenance, "mmsearch_bench") as dsn:
                schema.upgrade(dsn)
                yield dsn
        return
    args.keep.mkdir(parents=True, exist_ok=True)
    maintenance = args.dsn
    if not maintenance:
        pgdata = args.keep / "pg"
        maintenance = embedded.ensure_running(pgdata)
        if args.shared_buffers:
            maintenance = configured(maintenance, args.shared_buffers, pgdata)
    name = f"bench_{args.n}" + ("" if args.dim == 384 else f"_{args.dim}d")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(maintenance)
    dsn = psycopg.conninfo.make_conninfo(**{**params, "dbname": name})
    schema.upgrade(dsn)
    yield dsn


def configured(maintenance: str, shared_buffers: str, pgdata: Path | None = None) -> str:
    """An embedded server this run started, restarted with `shared_buffers` if need be."""
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if conn.execute("SHOW shared_buffers").fetchone()[0] == shared_buffers:
            return maintenance
        setting = sql.SQL("ALTER SYSTEM SET shared_buffers = {}")
        conn.execute(setting.format(sql.Literal(shared_buffers)))
        pgdata = pgdata or Path(conn.execute("SHOW data_directory").fetchone()[0])
    embedded.stop(pgdata)
    return embedded.ensure_running(pgdata)


def measure_postgres(
    run: Run,
    dsn: str,
    data: Dataset,
    scenarios: list[Scenario],
    truth: dict[str, Truth | None],
    args: argparse.Namespace,
) -> None:
    corpus, run.loads["PostgreSQL"], versions = load(
        dsn, data, args.maintenance_work_mem, args.keep
    )
    run.versions.update(versions)
    run.settings["mmsearch"] = {
        "knob": "ef_search (SearchOptions); default: its own (100, or 1 per 5,000 segments)",
        "path": "auto: exact below 20,000 passing segments, else HNSW (relaxed iterative)",
    }
    run.settings["hand-written SQL"] = {"knob": "hnsw.ef_search, or exact (index scans off)"}
    db = Database(dsn, max_size=8)
    try:
        for scenario in scenarios:
            run.rows += postgres_rows(db, corpus, data, scenario, truth[scenario.key], args)
    finally:
        db.close()


def postgres_rows(
    db: Database,
    corpus: Corpus,
    data: Dataset,
    scenario: Scenario,
    truth: Truth | None,
    args: argparse.Namespace,
) -> list[Row]:
    """mmsearch, the hand-written floor, and mmsearch doing the floor's work (and its ratio)."""
    n, rows = len(data.queries), []
    vector = scenario.legs == "vector" and truth is not None
    if "mmsearch" in args.systems:
        how = systems.mmsearch_path(db, data, scenario)
        knobs = (None, *systems.EF_SEARCH) if args.sweep and "hnsw" in how and vector else (None,)
        search = systems.mmsearch(db, corpus, data, scenario)
        rows.append(tune(scenario.name, "mmsearch", how, "ef_search", search, knobs,
                         truth["records"] if truth else None, n, args.budget))  # fmt: skip
    if "sql" not in args.systems:
        return rows
    if scenario.floor is None:
        return [*rows, cannot(scenario.name, PG_SYSTEMS["sql"], "no fusion of two rankings")]
    floor, path_of = systems.hand_written(db, corpus, data, scenario)
    # the exact plan last (a full scan when nothing filters: over budget, ending the sweep)
    knobs: tuple[int | None, ...] = (None,)
    if args.sweep and vector:
        filtered = scenario.flag or scenario.tag or scenario.principal
        knobs = (*systems.EF_SEARCH, systems.EXACT) if filtered else systems.EF_SEARCH
    hand = tune(scenario.name, PG_SYSTEMS["sql"], "", "ef_search", floor, knobs,
                truth["segments"] if truth else None, n, args.budget,
                systems.knob_label)  # fmt: skip
    hand.path = path_of(hand.knob)
    rows.append(hand)
    if vector and "mmsearch" in args.systems:
        rows.append(same_work(db, corpus, data, scenario, truth, hand, args))
    return rows


def same_work(
    db: Database,
    corpus: Corpus,
    data: Dataset,
    scenario: Scenario,
    truth: Truth,
    hand: Row,
    args: argparse.Namespace,
) -> Row:
    """mmsearch for the top 10 segments, one vector leg, the floor's path and ef_search."""
    exact = hand.knob == systems.EXACT or hand.path == "exact"
    ef = None if exact else hand.knob or systems.FLOOR_EF
    path = "exact" if exact else "hnsw"
    search = systems.mmsearch(db, corpus, data, scenario, segments=True, path=path)
    n = len(data.queries)
    point = timed(lambda i: search(i, ef), ef, n, truth["segments"], args.budget)
    qps_4 = concurrent_qps(lambda i: search(i, ef), n, clients=4)
    setting = "exact" if exact else f"ef_search={ef}"
    return Row(scenario.name, "mmsearch, the same work", path, setting, point.recall_at_10,
               point.p50_ms, point.p95_ms, point.qps_1, qps_4, knob=ef,
               p50_ratio=point.p50_ms / hand.p50_ms)  # fmt: skip


def measure_peer(
    run: Run,
    kind: type[Peer],
    data: Dataset,
    scenarios: list[Scenario],
    truth: dict[str, Truth | None],
    args: argparse.Namespace,
) -> None:
    keep = args.keep / f"peers-{args.n}" if args.keep else None
    peer = kind(args.dim, keep)
    try:
        run.loads[peer.name] = loaded(peer, data)
        run.versions.update(peer.versions())
        run.settings[peer.name] = {"knob": peer.knob, **peer.settings()}
        for scenario in scenarios:
            run.rows.append(peer_row(peer, data, scenario, truth[scenario.key], args))
    finally:
        peer.close()


def loaded(peer: Peer, data: Dataset) -> dict[str, float]:
    """Load and build the peer's store (timed), or open the one an earlier run kept."""
    n = len(data.segments.vectors)
    if peer.reuse(data.segments):
        return {"ingest_s": float("nan"), "ingest_per_s": float("nan"), "reused": 1.0,
                "index_build_s": float("nan"), "index_mb": float("nan"),
                "total_mb": peer.size_mb()}  # fmt: skip
    started = time.perf_counter()
    peer.load(data.segments)
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    peer.build()
    build_s = time.perf_counter() - started
    print(f"{peer.name}: ingest {ingest_s:.0f} s, build {build_s:.0f} s", file=sys.stderr)
    return {"ingest_s": ingest_s, "ingest_per_s": n / ingest_s, "index_build_s": build_s,
            "index_mb": float("nan"), "total_mb": peer.size_mb()}  # fmt: skip


def peer_row(
    peer: Peer, data: Dataset, scenario: Scenario, truth: Truth | None, args: argparse.Namespace
) -> Row:
    if scenario.legs in peer.cannot:
        return cannot(scenario.name, peer.name, peer.cannot[scenario.legs])
    knobs: Any = peer.sweep if args.sweep and scenario.legs == "vector" else (peer.default,)
    if scenario.legs == "keyword":
        knobs = (None,)
    search = systems.peer(peer, data, scenario)
    return tune(scenario.name, peer.name, "", peer.knob, search, knobs,
                truth["segments"] if truth else None, len(data.queries), args.budget)  # fmt: skip
