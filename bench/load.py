"""Load test: N concurrent search clients for D seconds, optionally while an ingest runs.

Builds a text collection (synthetic documents on a few topics) in a throwaway embedded
PostgreSQL under /tmp (or a scratch database on MMSEARCH_DATABASE_URL / `--dsn`), then runs
`--clients` threads that each call `Client.search` in a loop until `--seconds` have passed.
With `--with-ingest` a CLI `mmsearch ingest` subprocess writes further documents into the
same collection meanwhile (batches until the time is up, at most 50 batches).

All threads share ONE `Client`: that is how an application server holds it (one pool, each
model loaded once; a client per thread would load the models N times over). The pool is
thread-safe and is sized to the thread count, so no search waits for a connection; the
query encoders are only read from during inference.

Prints searches/s, p50/p95/max latency and the error count (which must be 0) and writes
bench/out/load[-ingest].json. Loopback/unix socket only; every loop is bounded.

    python -m bench.load                      # 8 clients, 60 s
    python -m bench.load --with-ingest        # the same while an ingest runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.scratch import scratch_database, server
from mmsearch.client import Client
from mmsearch.config import Settings
from mmsearch.db import schema
from mmsearch.db.engine import Database

OUT = Path(__file__).resolve().parent / "out"
COLLECTION = "load"
TOPICS = {
    "harbour": "ships harbour tide crane dock cargo pier ferry sailor rope anchor",
    "kitchen": "kitchen oven recipe flour butter knife grease lid stove pan kettle",
    "finance": "revenue quarter growth invoice budget margin forecast audit ledger",
    "travel": "flight passport conference hotel visa luggage airport train ticket",
    "garden": "garden soil seed tomato compost rake hedge orchard bloom spring",
}
QUERIES = [
    "ships in the harbour",
    "how to put out a grease fire",
    "quarterly revenue growth",
    "can I fly to a conference",
    "planting tomatoes in spring",
    "anchor rope",
    "budget forecast for next year",
    "hotel near the airport",
]


def write_docs(folder: Path, count: int, rng: random.Random, prefix: str = "doc") -> None:
    """Short documents, each mostly about one topic, 1-4 chunks long."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(TOPICS)
    for i in range(count):
        words = TOPICS[names[i % len(names)]].split() + TOPICS[rng.choice(names)].split()[:3]
        paragraphs = [
            " ".join(rng.choice(words) for _ in range(rng.randint(30, 90))) + "."
            for _ in range(rng.randint(1, 4))
        ]
        (folder / f"{prefix}{i:04}.txt").write_text("\n\n".join(paragraphs))


def run_searches(
    client: Client, clients: int, seconds: float
) -> tuple[list[float], list[str], list[int]]:
    """`clients` threads searching until the deadline; latencies (s), errors, per-thread n."""
    deadline = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []

    def worker(index: int) -> None:
        n = index
        while time.monotonic() < deadline:
            query = QUERIES[n % len(QUERIES)]
            n += 1
            started = time.perf_counter()
            try:
                hits = client.search(query, collection=COLLECTION, k=10)
                if not hits or any(not isinstance(h.score, float) for h in hits):
                    raise AssertionError(f"malformed answer to {query!r}: {hits!r}")
            except Exception as exc:  # counted and reported, never hidden
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies[index].append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    return [x for per in latencies for x in per], errors, [len(per) for per in latencies]


def background_ingest(
    dsn: str, folder: Path, stop: threading.Event, rng: random.Random, totals: dict[str, int]
) -> None:
    """CLI ingests of fresh batches into the same collection until told to stop."""
    env = {**os.environ, "MMSEARCH_DATABASE_URL": dsn, "CI": "1"}
    for batch in range(50):
        if stop.is_set():
            return
        path = folder / f"batch{batch:02}"
        write_docs(path, 40, rng, prefix=f"b{batch:02}-")
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmsearch", "ingest", str(path), "-c", COLLECTION, "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while proc.poll() is None and not stop.is_set():
            time.sleep(0.2)
        if proc.poll() is None:  # the searches are done: let the batch finish, bounded
            try:
                proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                proc.kill()
        out, err = proc.communicate()
        totals["batches"] += 1
        if proc.returncode != 0:
            totals["ingest_errors"] += 1
            print(f"ingest batch {batch} failed: {err.strip()}", file=sys.stderr)
        else:
            totals["ingested"] += json.loads(out.strip().splitlines()[-1])["ingested"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--docs", type=int, default=150, help="documents in the collection")
    parser.add_argument("--with-ingest", action="store_true")
    parser.add_argument("--dsn", default=os.environ.get("MMSEARCH_DATABASE_URL"))
    args = parser.parse_args()
    rng = random.Random(1)
    with (
        tempfile.TemporaryDirectory(prefix="mmsl-", dir="/tmp") as tmp,
        server(args.dsn) as maintenance,
        scratch_database(maintenance) as dsn,
    ):
        schema.upgrade(dsn)
        db = Database(dsn, max_size=max(args.clients, 2))
        client = Client(db, Settings.load(home=Path(tmp), database_url=dsn))
        try:
            write_docs(Path(tmp) / "docs", args.docs, rng)
            started = time.perf_counter()
            report = client.ingest([Path(tmp) / "docs"], collection=COLLECTION)
            build_s = time.perf_counter() - started
            segments = query_one(dsn, "SELECT count(*) FROM mmsearch.segment")
            print(f"collection: {report.ingested} records, {segments} segments in {build_s:.0f}s")
            client.search(QUERIES[0], collection=COLLECTION)  # models warm before the clock
            stop = threading.Event()
            totals = {"batches": 0, "ingested": 0, "ingest_errors": 0}
            ingester = None
            if args.with_ingest:
                ingester = threading.Thread(
                    target=background_ingest,
                    args=(dsn, Path(tmp) / "incoming", stop, rng, totals),
                )
                ingester.start()
                time.sleep(2)
            latencies, errors, per_thread = run_searches(client, args.clients, args.seconds)
            stop.set()
            if ingester is not None:
                ingester.join(timeout=400)
        finally:
            client.close()
        result = summarize(args, latencies, errors, per_thread, totals, segments)
    print(json.dumps(result, indent=2))
    OUT.mkdir(exist_ok=True)
    name = "load-ingest.json" if args.with_ingest else "load.json"
    (OUT / name).write_text(json.dumps(result, indent=2) + "\n")
    if errors or totals["ingest_errors"]:
        sys.exit(1)


def summarize(
    args: argparse.Namespace,
    latencies: list[float],
    errors: list[str],
    per_thread: list[int],
    totals: dict[str, int],
    segments: int,
) -> dict[str, Any]:
    ordered = sorted(latencies) or [float("nan")]
    return {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "clients": args.clients,
        "seconds": args.seconds,
        "with_ingest": args.with_ingest,
        "collection_segments": segments,
        "searches": len(latencies),
        "searches_per_s": round(len(latencies) / args.seconds, 2),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max_ms": round(1000 * ordered[-1], 1),
        "per_client": per_thread,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "ingest": totals if args.with_ingest else None,
    }


def query_one(dsn: str, text: str) -> Any:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(text).fetchone()[0]


if __name__ == "__main__":
    main()
