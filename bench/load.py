"""Load test of the HTTP API: searches/s and p50/p95 at 1, 4 and 16 concurrent clients,
each level without and with an ingest running alongside; and `mmsearch search` latency
from the CLI with and without a running server.

Builds a text collection (synthetic documents on a few topics) in a scratch database (a
throwaway embedded PostgreSQL under /tmp, or a scratch database on `--dsn` /
MMSEARCH_DATABASE_URL), starts a real `mmsearch serve` on a free loopback port, makes an
API token with `mmsearch token add`, then runs `--clients` threads, each with its own HTTP
connection, calling `GET /api/search` in a loop for `--seconds`. With ingest, a CLI
`mmsearch ingest` subprocess writes further batches of documents into the same collection
meanwhile (it loads its own models: that is part of the load on the machine).

Prints a table and writes bench/out/load-http.json. Every loop is bounded; errors are
counted and must be 0.

    python -m bench.load                             # 1, 4, 16 clients x 30 s, both ways
    python -m bench.load --clients 4 --seconds 10 --ingest no
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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from bench.scratch import scratch_dsn

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


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mmsearch", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"mmsearch {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@contextmanager
def running_server(env: dict[str, str], home: Path) -> Iterator[dict[str, Any]]:
    """`mmsearch serve --port 0`; yields what it published in server.json."""
    log = (home.parent / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mmsearch", "serve", "--port", "0", "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 600
        while not (home / "server.json").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mmsearch serve did not start: {log.name}")
            time.sleep(0.2)
        yield json.loads((home / "server.json").read_text())
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def run_clients(url: str, token: str, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` threads, one HTTP connection each, searching until the deadline."""
    deadline = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []

    def worker(index: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
            n = index
            while time.monotonic() < deadline:
                params = {"q": QUERIES[n % len(QUERIES)], "collection": COLLECTION, "k": 10}
                n += 1
                started = time.perf_counter()
                try:
                    answer = http.get("/api/search", params=params)
                    if answer.status_code != 200 or not answer.json()["hits"]:
                        raise AssertionError(f"{answer.status_code}: {answer.text[:200]}")
                except Exception as exc:  # counted and reported, never hidden
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies[index].append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 180)
    return summarize([x for per in latencies for x in per], errors, seconds)


def summarize(latencies: list[float], errors: list[str], seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies) or [float("nan")]
    return {
        "searches": len(latencies),
        "searches_per_s": round(len(latencies) / seconds, 2),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max_ms": round(1000 * ordered[-1], 1),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
    }


def background_ingest(
    env: dict[str, str], folder: Path, stop: threading.Event, rng: random.Random, totals: dict
) -> None:
    """CLI ingests of fresh 40-document batches into the collection until told to stop."""
    while not stop.is_set() and totals["batches"] < 50:
        batch = folder / f"batch{totals['batches']:02}"
        write_docs(batch, 40, rng, prefix=f"{batch.name}-")
        command = [sys.executable, "-m", "mmsearch", "ingest", str(batch), "-c", COLLECTION]
        proc = subprocess.Popen([*command, "--json"], env=env, stdout=subprocess.PIPE, text=True)
        while proc.poll() is None and not stop.is_set():
            time.sleep(0.2)
        try:
            out, _ = proc.communicate(timeout=300)  # the searches are done: let it finish
        except subprocess.TimeoutExpired:
            proc.kill()
            out = ""
        totals["batches"] += 1
        if proc.returncode != 0:
            totals["ingest_errors"] += 1
        else:
            totals["ingested"] += json.loads(out.strip().splitlines()[-1])["ingested"]


def timed_cli_searches(env: dict[str, str], runs: int) -> list[float]:
    """Wall seconds of whole `mmsearch search` processes (start, answer, exit)."""
    times = []
    for i in range(runs):
        started = time.perf_counter()
        cli(env, "search", QUERIES[i % len(QUERIES)], "-c", COLLECTION, "--json")
        times.append(round(time.perf_counter() - started, 3))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="1,4,16", help="comma-separated levels")
    parser.add_argument("--seconds", type=float, default=30.0, help="per level")
    parser.add_argument("--docs", type=int, default=150, help="documents in the collection")
    parser.add_argument("--ingest", choices=["no", "yes", "both"], default="both")
    parser.add_argument("--cli-runs", type=int, default=5, help="timed `mmsearch search` runs")
    parser.add_argument("--dsn", default=os.environ.get("MMSEARCH_DATABASE_URL"))
    args = parser.parse_args()
    rng = random.Random(1)
    levels = [int(n) for n in args.clients.split(",")]
    with (
        tempfile.TemporaryDirectory(prefix="mmsl-", dir="/tmp") as tmp,
        scratch_dsn(args.dsn) as dsn,
    ):
        home = Path(tmp) / "home"
        env = {**os.environ, "MMSEARCH_HOME": str(home), "MMSEARCH_DATABASE_URL": dsn}
        env.pop("MMSEARCH_URL", None)
        write_docs(Path(tmp) / "docs", args.docs, rng)
        cli(env, "init")
        print(cli(env, "ingest", str(Path(tmp) / "docs"), "-c", COLLECTION).strip())
        token = cli(env, "token", "add", "load", "--principal", "group:load").splitlines()[-1]
        no_server = {**env, "MMSEARCH_HOME": str(Path(tmp) / "elsewhere")}
        result: dict[str, Any] = {
            "date": date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
            "docs": args.docs,
            "seconds_per_level": args.seconds,
            "cli_without_server_s": timed_cli_searches(no_server, min(args.cli_runs, 2)),
            "runs": [],
        }
        with running_server(env, home) as published:
            result["cli_with_server_s"] = timed_cli_searches(env, args.cli_runs)
            for with_ingest in {"no": [False], "yes": [True], "both": [False, True]}[args.ingest]:
                for clients in levels:
                    run = measure(published["url"], token, clients, args, env, with_ingest, rng)
                    result["runs"].append(run)
                    print_run(run)
    OUT.mkdir(exist_ok=True)
    (OUT / "load-http.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    if any(r["errors"] or r.get("ingest", {}).get("ingest_errors") for r in result["runs"]):
        sys.exit(1)


def measure(
    url: str,
    token: str,
    clients: int,
    args: argparse.Namespace,
    env: dict[str, str],
    with_ingest: bool,
    rng: random.Random,
) -> dict[str, Any]:
    stop = threading.Event()
    totals = {"batches": 0, "ingested": 0, "ingest_errors": 0}
    ingester = None
    if with_ingest:
        folder = Path(env["MMSEARCH_HOME"]).parent / f"incoming-{clients}"
        ingester = threading.Thread(target=background_ingest, args=(env, folder, stop, rng, totals))
        ingester.start()
    run_clients(url, token, 1, 2.0)  # a short warm-up: connections, caches
    run = {"clients": clients, "with_ingest": with_ingest}
    run.update(run_clients(url, token, clients, args.seconds))
    stop.set()
    if ingester is not None:
        ingester.join(timeout=400)
        run["ingest"] = totals
    return run


def print_run(run: dict[str, Any]) -> None:
    ingest = f", ingest {run['ingest']}" if "ingest" in run else ""
    print(
        f"{run['clients']:>2} clients{' + ingest' if run['with_ingest'] else '         '}:"
        f" {run['searches_per_s']:6.1f} searches/s  p50 {run['p50_ms']:6.1f} ms"
        f"  p95 {run['p95_ms']:6.1f} ms  errors {run['errors']}{ingest}",
        flush=True,
    )


if __name__ == "__main__":
    main()
